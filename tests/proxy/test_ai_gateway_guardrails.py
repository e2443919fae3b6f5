"""Guardrails: the PII detector, then keyword and PII guardrails in both directions through the real proxy (both
routes' error shapes, streams masked or ended by an error event), and judged guardrails without a judge."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from modelgate_proxy.spec import ServingEndpoint
from modelgate_proxy.spec.capabilities import unsupported_guardrails
from modelgate_proxy.stages.guardrails.pii import detect, mask
from tests.standins.openai_api import OpenAIStandIn

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run_proxy

SECRETS = {"openai": {"api-key": FAKE_KEY}}
EMAIL = "jane.roe@example.org"


@pytest.mark.parametrize(("text", "entity"), [
    (f"write to {EMAIL} today", "EMAIL_ADDRESS"),
    ("card 4111 1111 1111 1111 exp 12/30", "CREDIT_CARD"),
    ("amex 378282246310005", "CREDIT_CARD"),
    ("my ssn is 123-45-6789", "US_SSN"),
    ("IBAN GB82 WEST 1234 5698 7654 32", "IBAN_CODE"),
    ("iban DE89370400440532013000.", "IBAN_CODE"),
    ("server 10.0.12.7 is down", "IP_ADDRESS"),
    ("v6 2001:db8::8a2e:370:7334 up", "IP_ADDRESS"),
    ("call +44 20 7946 0958 now", "PHONE_NUMBER"),
    ("call (415) 555-0100 now", "PHONE_NUMBER"),
    ("call 415-555-0100 now", "PHONE_NUMBER"),
])
def test_pii_detector_finds(text: str, entity: str) -> None:
    found = detect(text)
    assert [f.entity for f in found] == [entity]
    assert f"[{entity}]" in mask(text, found)


@pytest.mark.parametrize("text", [
    "card 4111 1111 1111 1112",  # fails Luhn
    "ssn 000-12-3456 and 666-12-3456 and 123-00-4567",  # never issued
    "iban GB82 WEST 1234 5698 7654 33",  # wrong check digits
    "on 2024-05-17 at 10:30:00, version 1.2.3, 12 500 EUR, order 1234567890123",
    "ip 999.1.1.1 and std::vector",
    "not an email: a@b, user@localhost",
])
def test_pii_detector_ignores(text: str) -> None:
    assert detect(text) == []


def test_pii_detector_is_linear_on_hostile_input() -> None:
    import time

    text = "a" * 20000 + "@" + "b." * 5000 + "!" + "1-" * 5000 + "@@" * 2000
    start = time.perf_counter()
    detect(text)
    assert time.perf_counter() - start < 1.0


def guard(direction: str, **params: Any) -> dict[str, Any]:
    return {"guardrails": {direction: params}}


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}], **extra}


def test_input_keywords_and_pii_block_in_both_shapes(tmp_path: Path,
                                                     openai_standin: tuple[OpenAIStandIn, str]) -> None:
    standin, url = openai_standin
    manifests = [endpoint("kw", [openai_entity(url)], ai_gateway=guard(
        "input", invalidKeywords=["ProjectNightingale"], pii={"behavior": "BLOCK"}))]
    with run_proxy(tmp_path, manifests, secrets=SECRETS) as proxy:
        r = httpx.post(f"{proxy.url}/serving-endpoints/kw/invocations",
                       json=chat("tell me about projectnightingale's budget"))
        assert r.status_code == 400
        assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "input guardrail 'invalid_keywords'" in r.json()["message"]
        assert "nightingale" not in r.text.lower()
        assert "budget" not in r.text
        client = openai.OpenAI(base_url=proxy.base, api_key="caller", max_retries=0)
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="kw", messages=[{"role": "user", "content": f"mail {EMAIL}"}])
        assert info.value.code == "content_filter"
        assert "input guardrail 'pii' (found: EMAIL_ADDRESS)" in info.value.message
        assert EMAIL not in info.value.response.text
        # multi-part content is checked too
        r = httpx.post(f"{proxy.url}/serving-endpoints/kw/invocations", json={"messages": [
            {"role": "user", "content": [{"type": "text", "text": "my ssn is 123-45-6789"}]}]})
        assert r.status_code == 400
        assert standin.stats.requests == []  # nothing reached the provider
        ok = client.chat.completions.create(model="kw", messages=[{"role": "user", "content": "a fine question"}])
        assert ok.choices[0].message.content == "You said: a fine question"
        metrics = httpx.get(f"{proxy.url}/metrics").text
        assert 'modelgate_guardrail_blocked_total{direction="input",endpoint="kw",guardrail="pii"} 2.0' in metrics


def test_input_mask_reaches_the_provider_masked(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    standin, url = openai_standin
    payload_log = tmp_path / "payload.jsonl"
    gw = {**guard("input", pii={"behavior": "MASK"}),
          "inferenceTableConfig": {"enabled": True, "catalogName": "ml", "schemaName": "gw"}}
    with run_proxy(tmp_path, [endpoint("m", [openai_entity(url)], ai_gateway=gw),
                              endpoint("e", [openai_entity(url, model="text-embedding-3-small",
                                                           task="llm/v1/embeddings")],
                                       ai_gateway=guard("input", pii={"behavior": "MASK"}))],
                   secrets=SECRETS, extra=["--payload-log", str(payload_log)]) as proxy:
        client = openai.OpenAI(base_url=proxy.base, api_key="caller", max_retries=0)
        answer = client.chat.completions.create(model="m", messages=[{"role": "user", "content": f"I am {EMAIL}"}])
        assert answer.choices[0].message.content == "You said: I am [EMAIL_ADDRESS]"
        assert standin.stats.last["body"]["messages"][0]["content"] == "I am [EMAIL_ADDRESS]"
        client.embeddings.create(model="e", input=["call 415-555-0100", "plain"])
        assert standin.stats.last["body"]["input"] == ["call [PHONE_NUMBER]", "plain"]
        from .test_ai_gateway_records import read_records

        record = read_records(payload_log, 1)[0]
    assert EMAIL not in json.dumps(record)


def test_output_guardrails_mask_and_block_answers_and_streams(tmp_path: Path,
                                                              openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _standin, url = openai_standin
    usage_log = tmp_path / "usage.jsonl"
    manifests = [
        endpoint("mask", [openai_entity(url)], ai_gateway=guard("output", pii={"behavior": "MASK"})),
        endpoint("block", [openai_entity(url)], ai_gateway={
            **guard("output", pii={"behavior": "BLOCK"}, invalidKeywords=["forbidden"]),
            "usageTrackingConfig": {"enabled": True}}),
        endpoint("complete", [openai_entity(url, model="gpt-3.5-turbo-instruct", task="llm/v1/completions")],
                 ai_gateway=guard("output", invalidKeywords=["INDEED"])),
    ]
    with run_proxy(tmp_path, manifests, secrets=SECRETS, extra=["--usage-log", str(usage_log)]) as proxy:
        client = openai.OpenAI(base_url=proxy.base, api_key="caller", max_retries=0)
        text = f"reach me at {EMAIL} or 415-555-0100"
        answer = client.chat.completions.create(model="mask", messages=[{"role": "user", "content": text}])
        assert answer.choices[0].message.content == (
            "You said: reach me at [EMAIL_ADDRESS] or [PHONE_NUMBER]")
        stream = client.chat.completions.create(model="mask", stream=True,
                                                messages=[{"role": "user", "content": text}])
        chunks = list(stream)
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed == "You said: reach me at [EMAIL_ADDRESS] or [PHONE_NUMBER]"
        assert chunks[-1].usage is not None  # the usage chunk survives

        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="block", messages=[{"role": "user", "content": text}])
        assert "output guardrail 'pii'" in info.value.message
        assert EMAIL not in info.value.response.text
        r = httpx.post(f"{proxy.url}/serving-endpoints/block/invocations",
                       json=chat("say FORBIDDEN words", stream=True))
        assert r.status_code == 200  # the stream started; the block ends it with an error event, no [DONE]
        events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
        assert events[-1] == {"error_code": "INVALID_PARAMETER_VALUE",
                              "message": "Response blocked by the output guardrail 'invalid_keywords'"}
        assert "FORBIDDEN" not in r.text
        assert "[DONE]" not in r.text
        with pytest.raises(openai.BadRequestError):
            client.completions.create(model="complete", prompt="Say this is a test")
        from .test_ai_gateway_records import read_records

        records = read_records(usage_log, 2)
    # the provider's tokens are accounted even when the answer was refused (the stream: as far as it was read)
    assert [u["status"] for u in records] == [400, 200]
    assert records[0]["output_tokens"] == 8
    assert records[1]["output_tokens"] > 0


def test_unsupported_guardrails_are_reported(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _standin, url = openai_standin
    manifest = endpoint("topics", [openai_entity(url)], ai_gateway={"guardrails": {
        "input": {"safety": True, "validTopics": ["billing"], "pii": {"behavior": "NONE"}},
        "output": {"safety": False}}})
    spec = ServingEndpoint.model_validate(manifest).spec
    assert unsupported_guardrails(spec) == ["aiGateway.guardrails.input.safety",
                                            "aiGateway.guardrails.input.validTopics"]
    with run_proxy(tmp_path, [manifest], secrets=SECRETS) as proxy:
        ready = httpx.get(f"{proxy.url}/readyz")
        assert ready.status_code == 200
        assert ready.json()["warnings"] == [
            "endpoint 'topics': aiGateway.guardrails.input.safety has no judge model; its requests follow the "
            "failure policy",
            "endpoint 'topics': aiGateway.guardrails.input.validTopics has no judge model; its requests follow the "
            "failure policy"]
        assert [type(s).__name__ for s in proxy.state.endpoints["topics"].pipeline.stages] == [
            "GuardrailChecks", "TrafficSplit"]
        r = httpx.post(f"{proxy.url}/serving-endpoints/topics/invocations", json=chat("billing question"))
        assert r.status_code == 503  # no judge, failure policy FAIL_CLOSED (the default)
        assert r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
        assert "input guardrail 'safety' could not be checked: no judge model" in r.json()["message"]


def test_masking_keeps_messages_without_content_and_non_text_parts() -> None:
    from modelgate_proxy.stages.guardrails.inspected import rewrite_request

    payload = {"messages": [
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                                              "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:x"}},
                                     {"type": "text", "text": f"to {EMAIL}"}]},
    ], "temperature": 0}
    out = rewrite_request("llm/v1/chat", payload, lambda t: mask(t, detect(t)))
    assert "content" not in out["messages"][0]
    assert out["messages"][0]["tool_calls"] == payload["messages"][0]["tool_calls"]
    assert out["messages"][1]["content"] == [{"type": "image_url", "image_url": {"url": "data:x"}},
                                             {"type": "text", "text": "to [EMAIL_ADDRESS]"}]
    assert payload["messages"][1]["content"][1]["text"] == f"to {EMAIL}"  # the original is not changed
    assert out["temperature"] == 0
