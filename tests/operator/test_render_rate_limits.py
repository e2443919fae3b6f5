"""The Deployment tells each proxy replica how many share an endpoint's rate limits."""

from __future__ import annotations

from modelgate_operator import render
from modelgate_operator.render import Owner, ProxyDefaults
from modelgate_proxy.spec import SecretRef, ServingEndpointSpec

from .samples import two_entities

OWNER = Owner(name="chat", namespace="team-a", uid="0000-1111")


def _command(raw: dict[str, object]) -> list[str]:
    spec = ServingEndpointSpec.model_validate(raw)
    dep = render.render(OWNER, spec, {SecretRef("openai-creds", "api-key"): "b2xk"}, ProxyDefaults()).deployment
    command: list[str] = dep["spec"]["template"]["spec"]["containers"][0]["command"]
    return command


def test_rate_limited_endpoints_pass_the_replica_count() -> None:
    raw = two_entities()
    raw["proxy"] = {"replicas": 3}
    assert "--rate-limit-replicas" not in _command(raw)  # no limits: the command is unchanged
    raw["aiGateway"] = {"rateLimits": [{"key": "endpoint", "calls": 10, "renewalPeriod": "minute"}]}
    command = _command(raw)
    assert command[:len(render.proxy_command())] == render.proxy_command()
    assert command[len(render.proxy_command()):] == ["--auth-config", "/etc/modelgate/auth.yaml",
                                                     "--rate-limit-replicas", "3"]
    raw["proxy"] = {"replicas": 1}
    assert "--rate-limit-replicas" not in _command(raw)
