"""Judged guardrails through the real proxy, with the Llama Guard stand-in (tests/standins/guard_judge.py) as
the judge: ``safety`` and ``validTopics`` on input and output, plain and streamed; a judge reached as another
ServingEndpoint or as a URL with a credential reference, or named by ``--guardrail-judge-*``; a judge that answers
garbage or too late (the failure policy holds); the verdict cache; the metrics and the payload record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelgate_proxy.spec import ServingEndpoint
from modelgate_proxy.spec.capabilities import unsupported_guardrails
from tests.standins.guard_judge import GuardJudgeStandIn
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.server import serve_app

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run_proxy

JUDGE_KEY = "sk-judge-0123456789"
SECRETS = {"openai": {"api-key": FAKE_KEY}, "judge": {"token": JUDGE_KEY}}


@pytest.fixture
def judge() -> Iterator[tuple[GuardJudgeStandIn, str]]:
    standin = GuardJudgeStandIn(api_key=JUDGE_KEY, delay=2.0)
    with serve_app(standin.app) as url:
        yield standin, url


def url_judge(url: str, **extra: Any) -> dict[str, Any]:
    return {"url": url + "/v1", "model": "llama-guard-3-8b", "apiKey": "{{secrets/judge/token}}", **extra}


def chat(text: str, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}], **extra}


def events(text: str) -> list[Any]:
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ") and line != "data: [DONE]"]


def test_safety_and_topics_on_input_and_output(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str],
                                               judge: tuple[GuardJudgeStandIn, str]) -> None:
    _standin, url = openai_standin
    judge_standin, judge_url = judge
    payload_log = tmp_path / "payload.jsonl"
    manifests = [
        endpoint("safe-in", [openai_entity(url)], ai_gateway={
            "guardrails": {"input": {"safety": True, "validTopics": ["billing", "invoices"]},
                           "judge": url_judge(judge_url)},
            "inferenceTableConfig": {"enabled": True, "catalogName": "c", "schemaName": "s"}}),
        endpoint("safe-out", [openai_entity(url)], ai_gateway={
            "guardrails": {"output": {"safety": True, "validTopics": ["billing"]}, "judge": url_judge(judge_url)}}),
    ]
    with run_proxy(tmp_path, manifests, secrets=SECRETS, extra=["--payload-log", str(payload_log)]) as proxy:
        base = f"{proxy.url}/serving-endpoints"
        ok = httpx.post(f"{base}/safe-in/invocations", json=chat("a billing question"))
        assert ok.status_code == 200
        # The judge got the Llama Guard prompt with the conversation and the credential from the reference.
        asked = judge_standin.stats.requests[0]
        assert asked["headers"]["authorization"] == f"Bearer {JUDGE_KEY}"
        assert asked["body"]["model"] == "llama-guard-3-8b"
        prompt = asked["body"]["messages"][0]["content"]
        assert "S9: Indiscriminate Weapons." in prompt
        assert "User: a billing question" in prompt

        unsafe = httpx.post(f"{base}/safe-in/invocations", json=chat("billing UNSAFE-WEAPONS plans"))
        assert unsafe.status_code == 400
        assert unsafe.json() == {"error_code": "INVALID_PARAMETER_VALUE",
                                 "message": "Request blocked by the input guardrail 'safety' (categories: S9)"}
        off = httpx.post(f"{base}/chat/completions", json={"model": "safe-in", **chat("the weather")})
        assert off.status_code == 400
        assert off.json()["error"]["code"] == "content_filter"
        assert off.json()["error"]["message"] == "Request blocked by the input guardrail 'valid_topics'"

        # Output: the stand-in model echoes the request, so the answer carries what the request said.
        assert httpx.post(f"{base}/safe-out/invocations", json=chat("billing is fine")).status_code == 200
        out = httpx.post(f"{base}/safe-out/invocations", json=chat("billing UNSAFE-HATE talk"))
        assert out.status_code == 400
        assert out.json()["message"] == "Response blocked by the output guardrail 'safety' (categories: S1, S10)"
        assert "UNSAFE-HATE" not in out.text
        streamed = httpx.post(f"{base}/safe-out/invocations", json=chat("billing UNSAFE-HATE talk", stream=True))
        assert streamed.status_code == 200
        assert events(streamed.text) == [{"error_code": "INVALID_PARAMETER_VALUE", "message":
                                          "Response blocked by the output guardrail 'safety' (categories: S1, S10)"}]
        assert "[DONE]" not in streamed.text
        fine = httpx.post(f"{base}/safe-out/invocations", json=chat("billing is fine", stream=True))
        assert "".join(c["choices"][0]["delta"].get("content") or "" for c in events(fine.text)
                       if c["choices"]) == "You said: billing is fine"
        assert fine.text.endswith("data: [DONE]\n\n")

        metrics = httpx.get(f"{proxy.url}/metrics").text
        assert ('modelgate_guardrail_decisions_total{decision="blocked",direction="input",endpoint="safe-in",'
                'guardrail="safety"} 1.0') in metrics
        assert 'modelgate_guardrail_judge_seconds_count{endpoint="safe-in",outcome="ok"}' in metrics
        from .test_ai_gateway_records import read_records

        records = read_records(payload_log, 3)
    assert records[1]["guardrails"] == [{"direction": "input", "guardrail": "safety", "decision": "blocked",
                                         "detail": ["S9"]}]
    assert records[2]["guardrails"][0]["guardrail"] == "valid_topics"
    assert records[0]["guardrails"] == []


def test_judge_endpoint_and_the_verdict_cache(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str],
                                              judge: tuple[GuardJudgeStandIn, str]) -> None:
    _standin, url = openai_standin
    judge_standin, judge_url = judge
    guard_entity = openai_entity(judge_url, model="llama-guard-3-8b", key_ref="{{secrets/judge/token}}")
    manifests = [
        endpoint("guard", [guard_entity]),
        endpoint("chat", [openai_entity(url)], ai_gateway={"guardrails": {
            "input": {"safety": True}, "judge": {"endpoint": "guard", "cacheSeconds": 60}}}),
    ]
    spec = ServingEndpoint.model_validate(manifests[1]).spec
    assert unsupported_guardrails(spec) == []  # a judge is named: the operator reports nothing
    with run_proxy(tmp_path, manifests, secrets=SECRETS) as proxy:
        base = f"{proxy.url}/serving-endpoints/chat/invocations"
        assert httpx.post(base, json=chat("hello")).status_code == 200
        assert httpx.post(base, json=chat("hello")).status_code == 200
        assert len(judge_standin.stats.requests) == 1  # the second verdict came from the cache
        assert httpx.post(base, json=chat("UNSAFE-WEAPONS")).status_code == 400
        assert len(judge_standin.stats.requests) == 2


@pytest.mark.parametrize("mode", ["garbage", "slow"])
def test_a_judge_without_a_verdict_follows_the_failure_policy(tmp_path: Path, mode: str,
                                                              openai_standin: tuple[OpenAIStandIn, str],
                                                              judge: tuple[GuardJudgeStandIn, str]) -> None:
    _standin, url = openai_standin
    judge_standin, judge_url = judge
    judge_standin.mode = mode  # type: ignore[assignment]
    manifests = [
        endpoint("closed", [openai_entity(url)], ai_gateway={"guardrails": {
            "input": {"safety": True}, "output": {"validTopics": ["billing"]},
            "judge": url_judge(judge_url, timeoutSeconds=0.3)}}),
        endpoint("logged", [openai_entity(url)], ai_gateway={"guardrails": {
            "input": {"safety": True}, "output": {"validTopics": ["billing"]},
            "judge": url_judge(judge_url, timeoutSeconds=0.3, failurePolicy="LOG_ONLY")}}),
    ]
    with run_proxy(tmp_path, manifests, secrets=SECRETS) as proxy:
        base = f"{proxy.url}/serving-endpoints"
        closed = httpx.post(f"{base}/closed/invocations", json=chat("billing"), timeout=10)
        assert closed.status_code == 503
        why = "the judge did not answer within 0.3 seconds" if mode == "slow" else "not a Llama Guard verdict"
        assert why in closed.json()["message"]
        assert "input guardrail 'safety' could not be checked" in closed.json()["message"]
        logged = httpx.post(f"{base}/logged/invocations", json=chat("billing"), timeout=10)
        assert logged.status_code == 200
        streamed = httpx.post(f"{base}/logged/invocations", json=chat("billing", stream=True), timeout=10)
        assert streamed.text.endswith("data: [DONE]\n\n")
        metrics = httpx.get(f"{proxy.url}/metrics").text
        assert ('modelgate_guardrail_decisions_total{decision="logged",direction="output",endpoint="logged",'
                'guardrail="valid_topics"} 2.0') in metrics
        outcome = "timeout" if mode == "slow" else "ok"
        assert f'modelgate_guardrail_judge_seconds_count{{endpoint="closed",outcome="{outcome}"}} 1.0' in metrics


def test_process_wide_judge(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str],
                            judge: tuple[GuardJudgeStandIn, str]) -> None:
    _standin, url = openai_standin
    _judge_standin, judge_url = judge
    manifests = [endpoint("chat", [openai_entity(url)], ai_gateway={"guardrails": {"input": {"safety": True}}})]
    extra = ["--guardrail-judge-url", judge_url + "/v1", "--guardrail-judge-model", "llama-guard-3-8b",
             "--guardrail-judge-api-key", "{{secrets/judge/token}}"]
    with run_proxy(tmp_path, manifests, secrets=SECRETS, extra=extra) as proxy:
        base = f"{proxy.url}/serving-endpoints/chat/invocations"
        assert httpx.post(base, json=chat("hello")).status_code == 200
        assert httpx.post(base, json=chat("UNSAFE-WEAPONS")).status_code == 400
        assert httpx.get(f"{proxy.url}/readyz").json().get("warnings", []) == []


def test_an_endpoint_judging_itself_gets_no_verdict_not_a_loop(tmp_path: Path,
                                                              openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _standin, url = openai_standin
    manifests = [endpoint("self", [openai_entity(url)], ai_gateway={"guardrails": {
        "input": {"safety": True}, "judge": {"endpoint": "self"}}})]
    with run_proxy(tmp_path, manifests, secrets=SECRETS) as proxy:
        r = httpx.post(f"{proxy.url}/serving-endpoints/self/invocations", json=chat("hello"), timeout=10)
        assert r.status_code == 503
        assert "the judge endpoint 'self' failed: 503" in r.json()["message"]
