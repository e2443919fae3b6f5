"""Stand-in for a safety classifier served behind an OpenAI-compatible chat API (vLLM serving Llama Guard 3,
for example): ``POST /v1/chat/completions`` with one user message carrying modelgate's judge prompt.

It reads the prompt the way the real model is instructed to (docs/guardrails.md): for the Llama Guard safety
prompt, the last turn of the conversation; for the topics prompt, the text and the allowed topics. Verdicts:

- ``llama`` (the default): ``unsafe\\nS9`` when the assessed turn contains ``UNSAFE-WEAPONS``, ``unsafe\\nS1,S10``
  for ``UNSAFE-HATE``, ``safe`` otherwise; ``on_topic`` when the text contains one of the topics' words, else
  ``off_topic``.
- ``garbage``: a chatty answer that is no verdict.
- ``slow``: waits ``delay`` seconds before the ``llama`` verdict (a judge that times out).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Literal

from .asgi import ASGIStandIn, bearer_token, read_request
from .fake_llm import Receive, Scope, Send, Stats, send_json

Mode = Literal["llama", "garbage", "slow"]


def _between(text: str, start: str, end: str) -> str:
    i = text.find(start)
    j = text.find(end, i + len(start))
    return text[i + len(start):j].strip() if i >= 0 and j >= 0 else ""


def safety_verdict(prompt: str) -> str:
    conversation = _between(prompt, "<BEGIN CONVERSATION>", "<END CONVERSATION>")
    turns = re.split(r"(?:^|\n\n)(?:User|Agent): ", conversation)
    last = turns[-1] if turns else ""
    if "UNSAFE-WEAPONS" in last:
        return "unsafe\nS9"
    if "UNSAFE-HATE" in last:
        return "unsafe\nS1,S10"
    return "safe"


def topics_verdict(prompt: str) -> str:
    topics = [line[2:].strip().lower() for line in
              _between(prompt, "<BEGIN ALLOWED TOPICS>", "<END ALLOWED TOPICS>").splitlines() if line.startswith("- ")]
    text = _between(prompt, "<BEGIN TEXT>", "<END TEXT>").lower()
    return "on_topic" if any(word in text for topic in topics for word in topic.split()) else "off_topic"


class GuardJudgeStandIn(ASGIStandIn):
    def __init__(self, mode: Mode = "llama", *, api_key: str | None = None, delay: float = 2.0) -> None:
        self.mode: Mode = mode
        self.api_key = api_key
        self.delay = delay
        self.stats = Stats()

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers, body = await read_request(scope, receive, self.stats)
        if self.api_key is not None and bearer_token(headers) != self.api_key:
            await send_json(send, 401, {"error": {"message": "Incorrect API key provided", "type":
                                                  "invalid_request_error", "param": None, "code": "invalid_api_key"}})
            return
        if not scope["path"].endswith("/chat/completions") or not isinstance(body, dict):
            await send_json(send, 404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            return
        prompt = str(body["messages"][-1]["content"])
        if self.mode == "slow":
            await asyncio.sleep(self.delay)
        if self.mode == "garbage":
            answer = "Well, it depends. I would rather not say."
        elif prompt.startswith("Task: Check if there is unsafe content"):
            answer = safety_verdict(prompt)
        else:
            answer = topics_verdict(prompt)
        await send_json(send, 200, _completion(answer, str(body.get("model") or "llama-guard-3")))


def _completion(answer: str, model: str) -> dict[str, Any]:
    return {"id": "chatcmpl-guard", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 3, "total_tokens": 103}}
