"""Serving ``llm/v1/completions`` through a provider's chat API.

Anthropic, Cohere and AI21 no longer offer a prompt-completion endpoint; their chat endpoint answers a single
user message instead. The prompt becomes that message, and the chat answer (whole or streamed) is rewritten
into OpenAI's ``text_completion`` shape.
"""

from __future__ import annotations

from ..errors import BadRequest, GatewayError
from ..json_types import JSON
from ..spec import Task
from .base import StreamDecoder, chunks_before, with_chunks_before
from .params import drop_unsupported


def chat_payload_from_prompt(payload: JSON, provider: str) -> JSON:
    """The completions payload as a chat payload: ``prompt`` → one user message."""
    body = dict(payload)
    prompt = body.pop("prompt", None)
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if isinstance(prompt, list):
        raise BadRequest(f"{provider} completions take one prompt per request", param="prompt")
    if not isinstance(prompt, str) or not prompt:
        raise BadRequest("prompt must be a non-empty string", param="prompt")
    drop_unsupported(body, ("best_of", "echo", "suffix", "logprobs"), provider)
    body["messages"] = [{"role": "user", "content": prompt}]
    return body


def text_completion_from_chat(chat: JSON) -> JSON:
    choices = [
        {
            "text": choice["message"].get("content") or "",
            "index": choice["index"],
            "logprobs": None,
            "finish_reason": choice["finish_reason"],
        }
        for choice in chat["choices"]
    ]
    return {
        "id": chat["id"],
        "object": "text_completion",
        "created": chat["created"],
        "model": chat["model"],
        "choices": choices,
        "usage": chat.get("usage"),
    }


def completion_chunk_from_chat(chunk: JSON) -> JSON | None:
    """A ``text_completion`` stream chunk, or None for a chat chunk with nothing to say (role-only)."""
    out: JSON = {"id": chunk["id"], "object": "text_completion", "created": chunk["created"], "model": chunk["model"]}
    if not chunk["choices"]:
        out["choices"] = []
        out["usage"] = chunk.get("usage")
        return out
    choice = chunk["choices"][0]
    text = choice["delta"].get("content") or ""
    if not text and choice.get("finish_reason") is None:
        return None
    out["choices"] = [{"text": text, "index": 0, "logprobs": None, "finish_reason": choice.get("finish_reason")}]
    return out


class CompletionsStreamDecoder(StreamDecoder):
    """Wraps a chat stream decoder and rewrites its chunks as ``text_completion`` chunks, those that precede an
    error in the stream (:func:`~.base.chunks_before`) included."""

    def __init__(self, chat: StreamDecoder) -> None:
        self.chat = chat

    def feed(self, data: bytes) -> list[JSON]:
        try:
            return self._convert(self.chat.feed(data))
        except GatewayError as err:
            with_chunks_before(err, self._convert(chunks_before(err)))
            raise

    def close(self) -> list[JSON]:
        try:
            return self._convert(self.chat.close())
        except GatewayError as err:
            with_chunks_before(err, self._convert(chunks_before(err)))
            raise

    @staticmethod
    def _convert(chunks: list[JSON]) -> list[JSON]:
        return [c for c in map(completion_chunk_from_chat, chunks) if c is not None]


def chat_payload_for(task: Task, payload: JSON, provider: str) -> JSON:
    """The chat payload to translate for ``task``: the payload itself, or for completions the prompt as chat."""
    return chat_payload_from_prompt(payload, provider) if task == "llm/v1/completions" else payload


def answer_for(task: Task, chat: JSON) -> JSON:
    """The answer to ``task`` from a ``chat.completion``: itself, or for completions a ``text_completion``."""
    return text_completion_from_chat(chat) if task == "llm/v1/completions" else chat


def stream_for(task: Task, chat: StreamDecoder) -> StreamDecoder:
    """The stream decoder for ``task`` from a chat stream decoder: itself, or for completions one that rewrites
    its chunks as ``text_completion`` chunks."""
    return CompletionsStreamDecoder(chat) if task == "llm/v1/completions" else chat
