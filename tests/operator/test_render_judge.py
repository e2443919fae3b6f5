"""Pure rendering of an endpoint's guardrail judge (:mod:`modelgate_operator.render_judge`): the endpoint's own
``judge.apiKey`` reference is mounted; the global judge becomes ``--guardrail-judge-*`` options; a judge
endpoint's manifest becomes ``judges.yaml`` and the checksum follows it; the condition names a judge problem."""

from __future__ import annotations

from typing import Any

from modelgate_operator import render, render_judge, secrets, spec_problems
from modelgate_operator.render import Owner, ProxyDefaults
from modelgate_proxy.spec import SecretRef, ServingEndpointSpec
from modelgate_proxy.spec.gateway import GuardrailJudge

OWNER = Owner("chat", "team-a", "uid-1")
ENTITY = {"externalModel": {"name": "gpt-4o", "provider": "openai", "task": "llm/v1/chat",
                            "openaiConfig": {"openaiApiKey": "{{secrets/openai/key}}"}}}


def _spec(guardrails: dict[str, Any]) -> ServingEndpointSpec:
    return ServingEndpointSpec.model_validate({"servedEntities": [ENTITY], "aiGateway": {"guardrails": guardrails}})


def _container(children: render.Children) -> dict[str, Any]:
    return dict(children.deployment["spec"]["template"]["spec"]["containers"][0])


def test_the_endpoints_own_judge_key_is_mounted() -> None:
    spec = _spec({"input": {"safety": True}, "judge": {"url": "http://g/v1", "model": "m",
                                                        "apiKey": "{{secrets/guard/token}}"}})
    fields = secrets.collect(spec) + render_judge.own_key_fields(spec)
    resolved = {SecretRef("openai", "key"): "a", SecretRef("guard", "token"): "b"}
    children = render.render(OWNER, spec, resolved, ProxyDefaults(), fields)
    volumes = children.deployment["spec"]["template"]["spec"]["volumes"]
    mounted = {v["secret"]["secretName"]: v["secret"]["items"] for v in volumes if "secret" in v}
    assert mounted["guard"] == [{"key": "token", "path": "token"}]
    assert render_judge.JUDGES_KEY not in children.config_map["data"]
    assert "--judge-file" not in _container(children)["command"]


def test_the_global_judge_and_a_judge_endpoint() -> None:
    spec = _spec({"output": {"validTopics": ["billing"]}})
    default = GuardrailJudge.model_validate({"endpoint": "guard", "failurePolicy": "LOG_ONLY", "timeoutSeconds": 2})
    assert render_judge.effective_judge(spec, default) is default
    assert render_judge.effective_judge(spec, None) is None
    assert render_judge.effective_judge(_spec({"input": {"invalidKeywords": ["x"]}}), default) is None
    guard = {"apiVersion": "serving.modelgate.io/v1alpha1", "kind": "ServingEndpoint",
             "metadata": {"name": "guard", "namespace": "team-a"}, "spec": {"servedEntities": [ENTITY]}}
    wiring = render_judge.JudgeWiring((guard,), (), {}, render_judge.global_args(default))
    plain = render.render(OWNER, spec, {SecretRef("openai", "key"): "a"}, ProxyDefaults(judge=default))
    judged = render.render(OWNER, spec, {SecretRef("openai", "key"): "a"}, ProxyDefaults(judge=default), judge=wiring)
    command = _container(judged)["command"]
    assert command[-8:] == ["--judge-file", render_judge.JUDGES_PATH, "--guardrail-judge-endpoint", "guard",
                            "--guardrail-judge-timeout", "2", "--guardrail-judge-failure-policy", "LOG_ONLY"]
    assert "name: guard" in judged.config_map["data"][render_judge.JUDGES_KEY]
    assert {"name": "config", "mountPath": render_judge.JUDGES_PATH, "subPath": render_judge.JUDGES_KEY,
            "readOnly": True} in _container(judged)["volumeMounts"]
    assert judged.checksum != plain.checksum


def test_a_judge_problem_is_guardrails_not_enforced_with_the_reason() -> None:
    spec = _spec({"input": {"safety": True}, "judge": {"endpoint": "guard"}})
    assert spec_problems.config_check(spec, 1, False) is None  # a judge is named
    check = spec_problems.config_check(spec, 1, False, (), "the judge endpoint 'guard' does not exist")
    assert check is not None
    assert (check.status, check.reason) == ("True", "GuardrailsNotEnforced")
    assert check.message.startswith("the configuration is valid, but the judge endpoint 'guard' does not exist")
    assert check.message.endswith(": aiGateway.guardrails.input.safety")
    unnamed = _spec({"input": {"safety": True}})
    assert spec_problems.config_check(unnamed, 1, False).reason == "GuardrailsNotEnforced"  # type: ignore[union-attr]
    assert spec_problems.config_check(unnamed, 1, False, (), None, True) is None  # the global judge decides
