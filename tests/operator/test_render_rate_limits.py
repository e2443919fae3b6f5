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


def test_autoscaled_or_redis_backed_endpoints_divide_nothing() -> None:
    from modelgate_operator.render_scaling import per_replica_note

    raw = two_entities()
    raw["aiGateway"] = {"rateLimits": [{"key": "endpoint", "calls": 10, "renewalPeriod": "minute"}]}
    raw["proxy"] = {"autoscaling": {"maxReplicas": 4}}
    assert "--rate-limit-replicas" not in _command(raw)
    spec = ServingEndpointSpec.model_validate(raw)
    dep = render.render(OWNER, spec, {SecretRef("openai-creds", "api-key"): "b2xk"},
                        ProxyDefaults(redis_secret="redis")).deployment
    command = dep["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--rate-limit-replicas" not in command
    assert command[-4:] == [  # after the authentication flags
        "--rate-limit-redis-prefix", "modelgate:team-a", "--rate-limit-redis-password-file", "/etc/modelgate/redis/password"]
    assert "replicas" not in dep["spec"]  # the autoscaler's
    note = per_replica_note(spec, 1, shared_counters=False)
    assert note is not None
    assert "up to 4 replicas" in note
    assert per_replica_note(spec, 1, shared_counters=True) is None
    fixed = ServingEndpointSpec.model_validate({**raw, "proxy": {"replicas": 3}})
    assert "ceil(limit / 3)" in (per_replica_note(fixed, 1, shared_counters=False) or "")
    single = ServingEndpointSpec.model_validate({**raw, "proxy": {"replicas": 1}})
    assert per_replica_note(single, 1, shared_counters=False) is None
