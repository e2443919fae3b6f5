"""The chart's global guardrail judge (``guardrails.judge``): off by default; set, it reaches the operator as
``--guardrail-judge`` JSON the operator's own model accepts; the schema refuses a judge that is both kinds."""

from __future__ import annotations

import json

from modelgate_proxy.spec.gateway import GuardrailJudge

from .helmtool import CHART, KUBE_VERSION, Helm, container, one, set_args


def _judge_args(helm: Helm, values: dict[str, object]) -> list[str]:
    args = container(one(helm.template(values), "Deployment", "mg-modelgate"))["args"]
    return [a for a in args if a.startswith("--guardrail-judge")]


def test_no_global_judge_by_default(helm: Helm) -> None:
    assert _judge_args(helm, {}) == []


def test_a_url_judge_reaches_the_operator_as_its_model(helm: Helm) -> None:
    judge = {"url": "http://guard.ai:8000/v1", "model": "llama-guard-3-8b", "apiKey": "{{secrets/guard/token}}",
             "failurePolicy": "LOG_ONLY", "timeoutSeconds": 2.5}
    (arg,) = _judge_args(helm, {"guardrails.judge": judge})
    parsed = GuardrailJudge.model_validate(json.loads(arg.removeprefix("--guardrail-judge=")))
    assert (parsed.url, parsed.model, parsed.api_key, parsed.failure_policy, parsed.timeout_seconds) == (
        judge["url"], judge["model"], judge["apiKey"], "LOG_ONLY", 2.5)
    (arg,) = _judge_args(helm, {"guardrails.judge": {"endpoint": "guard"}})
    assert json.loads(arg.removeprefix("--guardrail-judge=")) == {"endpoint": "guard"}


def test_the_schema_refuses_a_judge_of_both_kinds_or_a_url_without_model(helm: Helm) -> None:
    for judge in ({"endpoint": "guard", "url": "http://g/v1", "model": "m"}, {"url": "http://g/v1"},
                  {"endpoint": "guard", "apiKey": "sk-inline"}):
        res = helm.run("template", "mg", str(CHART), "--kube-version", KUBE_VERSION,
                       *set_args({"guardrails.judge": judge}), check=False)
        assert res.returncode != 0, judge
        assert "values don't meet the specifications of the schema" in res.stdout + res.stderr
