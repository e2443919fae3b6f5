"""Output guardrails on streams (stages/guardrails/stream_window.py): values split across chunks are masked and
never leave the proxy, only a bounded window is held back (text flows before the stream ends), a block
mid-stream ends it with an error event; tool-call arguments with PII are masked or blocked, in requests and
answers, plain and streamed; the added time to first token is measured."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelgate_proxy.errors import GuardrailBlocked
from modelgate_proxy.spec.gateway import GuardrailParameters
from modelgate_proxy.stages.guardrails.stream_window import StreamWindow, window
from modelgate_proxy.stages.guardrails.text_guard import TextGuard, Verdict
from tests.standins.openai_api import OpenAIStandIn

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run_proxy

SECRETS = {"openai": {"api-key": FAKE_KEY}}
PHONE = "+44 20 7946 0958"
CARD = "4111 1111 1111 1111"


def content_chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]}


def tool_chunk(arguments: str, finish: str | None = None) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]},
                         "finish_reason": finish}]}


def window_of(**params: Any) -> tuple[StreamWindow, list[Verdict]]:
    seen: list[Verdict] = []

    def decided(verdict: Verdict) -> None:
        seen.append(verdict)

    return StreamWindow(TextGuard("output", GuardrailParameters.model_validate(params)), decided), seen


def run_window(w: StreamWindow, chunks: list[dict[str, Any]]) -> tuple[list[str], str]:
    """Feed the chunks one by one; (text released after each feed, everything sent)."""
    async def go() -> tuple[list[str], str]:
        released = []
        sent = []
        for chunk in chunks:
            out = await w.feed([chunk])
            text = "".join(_texts(out))
            released.append(text)
            sent.append(text)
        sent.append("".join(_texts(await w.close([]))))
        return released, "".join(sent)

    return asyncio.run(go())


def _texts(chunks: list[dict[str, Any]]) -> list[str]:
    out = []
    for c in chunks:
        for choice in c.get("choices") or ():
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                out.append(delta["content"])
            for call in delta.get("tool_calls") or ():
                out.append(call["function"]["arguments"])
    return out


@pytest.mark.parametrize(("value", "entity"), [(PHONE, "PHONE_NUMBER"), (CARD, "CREDIT_CARD")])
@pytest.mark.parametrize("piece", [1, 3, 7])
def test_a_value_split_across_chunks_is_masked(value: str, entity: str, piece: int) -> None:
    text = "call me at " + value + " tomorrow, thanks"
    chunks = [content_chunk(text[i:i + piece]) for i in range(0, len(text), piece)]
    chunks.append(content_chunk("", "stop"))
    w, seen = window_of(pii={"behavior": "MASK"})
    _released, sent = run_window(w, chunks)
    assert sent == f"call me at [{entity}] tomorrow, thanks"
    for i in range(1, len(value.replace(" ", ""))):  # no piece of the value's digits got out
        assert value.replace(" ", "")[:i + 4] not in sent.replace(" ", "")
    assert seen == [Verdict(entities=(entity,), masked=True)]


def test_only_a_bounded_window_is_held_back() -> None:
    w, _seen = window_of(pii={"behavior": "MASK"})
    bound = window(w.guard)
    assert bound == 256  # the longest PII value (an e-mail address is at most 254 characters)
    words = [f"word{i} " for i in range(400)]
    released, sent = run_window(w, [content_chunk(t) for t in words] + [content_chunk("", "stop")])
    streamed = "".join(words)
    for i in range(len(words)):  # after each chunk, everything but the last `bound` characters is out
        assert len("".join(released[:i + 1])) >= len("".join(words[:i + 1])) - bound
    assert sent == streamed


def test_the_held_part_is_the_open_suffix() -> None:
    from modelgate_proxy.stages.guardrails.stream_window import open_suffix

    assert open_suffix("see you tomorrow", 256) == len("tomorrow")
    assert open_suffix("call me at +44 20 7946", 256) == len("+44 20 7946")
    assert open_suffix('{"phone": "+44 20 ', 256) == len('"+44 20 ')
    assert open_suffix("IBAN GB82 WEST 1234 ", 256) == len("IBAN GB82 WEST 1234 ")
    assert open_suffix("x" * 300, 256) == 256  # never more than the window
    assert open_suffix("prose ends here. ", 256) == 0


def test_a_keyword_split_across_chunks_blocks_before_it_is_sent() -> None:
    w, seen = window_of(invalidKeywords=["ProjectNightingale"])
    chunks = [content_chunk(t) for t in ["The plan is Project", "Night", "ingale, as agreed"]]

    async def go() -> str:
        out = ""
        for chunk in chunks:
            out += "".join(_texts(await w.feed([chunk])))
        return out

    with pytest.raises(GuardrailBlocked) as info:
        asyncio.run(go())
    assert info.value.message == "Response blocked by the output guardrail 'invalid_keywords'"
    assert seen == [Verdict(blocked="invalid_keywords")]


def test_streamed_tool_call_arguments_are_masked() -> None:
    args = json.dumps({"to": "jane.roe@example.org", "phone": PHONE})
    chunks = [tool_chunk(args[i:i + 5]) for i in range(0, len(args), 5)] + [tool_chunk("", "tool_calls")]
    w, _seen = window_of(pii={"behavior": "MASK"})
    _released, sent = run_window(w, chunks)
    assert json.loads(sent) == {"to": "[EMAIL_ADDRESS]", "phone": "[PHONE_NUMBER]"}


def sse_texts(body: str) -> tuple[list[Any], str]:
    events = [json.loads(line[6:]) for line in body.splitlines()
              if line.startswith("data: ") and line != "data: [DONE]"]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in events if c.get("choices"))
    return events, text


def test_streams_through_the_proxy(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _standin, url = openai_standin
    manifests = [
        endpoint("mask", [openai_entity(url)], ai_gateway={"guardrails": {"output": {"pii": {"behavior": "MASK"}}}}),
        endpoint("block", [openai_entity(url)], ai_gateway={"guardrails": {"output": {"pii": {"behavior": "BLOCK"}}}}),
    ]
    with run_proxy(tmp_path, manifests, secrets=SECRETS) as proxy:
        base = f"{proxy.url}/serving-endpoints"
        body = {"messages": [{"role": "user", "content": f"card {CARD} and phone {PHONE}"}], "stream": True}
        r = httpx.post(f"{base}/mask/invocations", json=body)
        _events, text = sse_texts(r.text)
        assert text == "You said: card [CREDIT_CARD] and phone [PHONE_NUMBER]"
        assert "1111" not in r.text
        assert "7946" not in r.text
        assert r.text.endswith("data: [DONE]\n\n")
        r = httpx.post(f"{base}/chat/completions", json={"model": "block", **body})
        events, _text = sse_texts(r.text)
        assert events[-1] == {"error": {"message": "Response blocked by the output guardrail 'pii' (found: "
                                        "CREDIT_CARD)", "type": "invalid_request_error", "param": None,
                                        "code": "content_filter"}}
        assert "1111" not in r.text
        assert "[DONE]" not in r.text


def test_tool_call_arguments_with_pii(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    standin, url = openai_standin
    manifests = [
        endpoint("mask", [openai_entity(url)], ai_gateway={"guardrails": {"input": {"pii": {"behavior": "MASK"}}}}),
        endpoint("block", [openai_entity(url)], ai_gateway={"guardrails": {"input": {"pii": {"behavior": "BLOCK"}}}}),
        endpoint("out", [openai_entity(url)], ai_gateway={"guardrails": {"output": {"invalidKeywords": ["Boston"]}}}),
    ]
    history = {"messages": [
        {"role": "user", "content": "call her"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
            "name": "dial", "arguments": json.dumps({"number": PHONE})}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "dialled; her e-mail is jane.roe@example.org"},
    ]}
    tools = {"tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}]}
    with run_proxy(tmp_path, manifests, secrets=SECRETS) as proxy:
        base = f"{proxy.url}/serving-endpoints"
        assert httpx.post(f"{base}/mask/invocations", json=history).status_code == 200
        sent = standin.stats.requests[-1]["body"]["messages"]
        assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == {"number": "[PHONE_NUMBER]"}
        assert sent[2]["content"] == "dialled; her e-mail is [EMAIL_ADDRESS]"
        blocked = httpx.post(f"{base}/block/invocations", json=history)
        assert blocked.status_code == 400
        assert blocked.json()["message"] == ("Request blocked by the input guardrail 'pii' "
                                             "(found: EMAIL_ADDRESS, PHONE_NUMBER)")
        assert "7946" not in blocked.text
        # The stand-in answers with a weather tool call for Boston: the output guardrail reads its arguments.
        plain = httpx.post(f"{base}/out/invocations", json={"messages": [{"role": "user", "content": "hi"}], **tools})
        assert plain.status_code == 400
        streamed = httpx.post(f"{base}/out/invocations",
                              json={"messages": [{"role": "user", "content": "hi"}], "stream": True, **tools})
        assert streamed.text.rstrip().endswith(
            'data: {"error_code":"INVALID_PARAMETER_VALUE","message":"Response blocked by the output guardrail '
            '\'invalid_keywords\'"}')
        assert "Boston" not in streamed.text


def test_added_time_to_first_token(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    """A test-side figure (docs/guardrails.md): the time to the first text byte of a stream with output PII
    masking against the same stream without guardrails, median of 15, on this shared machine. The window holds
    back at most 256 characters, so the first text arrives before the stream ends, not after it."""
    _standin, url = openai_standin
    manifests = [
        endpoint("plain", [openai_entity(url)]),
        endpoint("mask", [openai_entity(url)], ai_gateway={"guardrails": {"output": {"pii": {"behavior": "MASK"}}}}),
    ]
    words = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "we", "wait", "for", "the", "answer", "to", "arrive"]
    text = " ".join(words[i % len(words)] for i in range(300))  # a 300-word echo, one word per chunk
    body = {"messages": [{"role": "user", "content": text}], "stream": True}

    def first_text(client: httpx.Client, name: str) -> tuple[float, float]:
        start = time.perf_counter()
        first = None
        with client.stream("POST", f"/serving-endpoints/{name}/invocations", json=body) as r:
            for line in r.iter_lines():
                if first is None and line.startswith("data: {") and '"content":"' in line and '"content":""' not in line:
                    first = time.perf_counter() - start
        return first if first is not None else float("inf"), time.perf_counter() - start

    with run_proxy(tmp_path, manifests, secrets=SECRETS) as proxy, httpx.Client(base_url=proxy.url) as client:
        figures: dict[str, list[tuple[float, float]]] = {"plain": [], "mask": []}
        for _ in range(15):
            for name in figures:
                figures[name].append(first_text(client, name))
    median = {name: sorted(f[0] for f in runs)[7] for name, runs in figures.items()}
    total = {name: sorted(f[1] for f in runs)[7] for name, runs in figures.items()}
    print(f"TTFT plain {median['plain'] * 1000:.2f} ms, mask {median['mask'] * 1000:.2f} ms; "
          f"whole stream plain {total['plain'] * 1000:.2f} ms, mask {total['mask'] * 1000:.2f} ms")
    assert median["mask"] < total["mask"]  # the first text arrives before the stream's end
    assert median["mask"] - median["plain"] < 0.25
