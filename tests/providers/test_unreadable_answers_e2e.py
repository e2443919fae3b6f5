"""A provider answer of the wrong shape (valid JSON, but a string where a number belongs, a list where an object
does) is a 502 that says so, never a 500; in a stream it ends the stream with an error event, never a broken
connection. Through the real proxy, with the official ``openai`` client as the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tests.providers import e2e
from tests.providers.e2e import ENDPOINT, gateway


def _sse(events: list[tuple[str | None, Any]]) -> list[bytes]:
    return [(f"event: {name}\n" if name else "").encode() + b"data: " + orjson.dumps(data) + b"\n\n" for name, data in events]


# Per provider: the path it is called on, its config block, and a plain answer and a stream that are each
# well-formed JSON of the wrong shape (the rest of the answer as the provider's reference documents it).
PROVIDERS: dict[str, dict[str, Any]] = {
    "anthropic": {
        "path": "/v1/messages", "config": ("anthropicConfig", "anthropicApiKey", "anthropicApiBase"),
        "plain": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "end_turn",
                  "content": [{"type": "text", "text": "Hi"}], "usage": {"input_tokens": "n/a", "output_tokens": 2}},
        "stream": _sse([
            ("message_start", {"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": {"input_tokens": "n/a"}}}),
            ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ("message_stop", {"type": "message_stop"}),
        ]),
    },
    "cohere": {
        "path": "/v2/chat", "config": ("cohereConfig", "cohereApiKey", "cohereApiBase"),
        "plain": {"id": "c1", "finish_reason": "COMPLETE", "message": {"role": "assistant", "content": [{"type": "text", "text": "Hi"}]},
                  "usage": {"tokens": {"input_tokens": "n/a", "output_tokens": 2}}},
        "stream": _sse([
            (None, {"type": "message-start", "id": "c1", "delta": {"message": {"role": "assistant"}}}),
            (None, {"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {"tokens": {"input_tokens": "n/a", "output_tokens": 2}}}}),
        ]),
    },
    "ai21labs": {
        "path": "/studio/v1/chat/completions", "config": ("ai21labsConfig", "ai21labsApiKey", "ai21labsApiBase"),
        "plain": {"id": "a1", "choices": "not a list", "usage": {"prompt_tokens": 1}},
        "stream": [*_sse([(None, {"id": "a1", "choices": [{"index": 0, "delta": "not an object"}]})]), b"data: [DONE]\n\n"],
    },
}  # fmt: skip


def _standin(path: str, plain: Any, stream: list[bytes]) -> Starlette:
    async def answer(request: Request) -> Response:
        if orjson.loads(await request.body()).get("stream"):

            async def events() -> AsyncIterator[bytes]:
                for event in stream:
                    yield event

            return StreamingResponse(events(), media_type="text/event-stream")
        return Response(orjson.dumps(plain), media_type="application/json")

    return Starlette(routes=[Route(path, answer, methods=["POST"])])


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_unreadable_answer_is_a_502_and_a_stream_error_event(tmp_path: Path, provider: str) -> None:
    case = PROVIDERS[provider]
    config_field, key_field, base_field = case["config"]
    with gateway(tmp_path, _standin(case["path"], case["plain"], case["stream"]), provider, "m", "llm/v1/chat",
                 config_field=config_field, key_field=key_field, key="k", base_field=base_field) as gw:  # fmt: skip
        error = e2e.chat_error(gw)
        assert error.status_code == 502
        assert f"{provider} returned a response that could not be read" in error.message
        assert "Traceback" not in error.response.text

        stream = gw.client.chat.completions.create(model=ENDPOINT, messages=[{"role": "user", "content": "Hi"}], stream=True)
        with pytest.raises(openai.APIError) as info:
            list(stream)
        assert "could not be read" in str(info.value)
