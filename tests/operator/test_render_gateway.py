"""Pure rendering of the workspace gateway (:mod:`modelgate_operator.render_gateway`): the Ingress values, the
flags, and the object size at the endpoint bound of :mod:`modelgate_operator.gateway_sync`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from modelgate_operator import gateway_sync, render_gateway
from modelgate_operator.gateway_defaults import GatewayDefaults, GatewayIngress
from modelgate_operator.render import Owner, ProxyDefaults
from modelgate_operator.render_auth import AuthDefaults

NS = "team-a"


def _render(gateway: GatewayDefaults, defaults: ProxyDefaults | None = None, n: int = 2) -> dict[str, Any]:
    owners = [Owner(name=f"ep-{i}", namespace=NS, uid=f"uid-{i}") for i in range(n)]
    docs = render_gateway.render(NS, owners, {"creds": ["key"]}, "digest", defaults or ProxyDefaults(), gateway)
    return {d["kind"]: d for d in docs}


def test_no_ingress_unless_enabled_and_its_values_when_it_is() -> None:
    assert list(_render(GatewayDefaults())) == ["ServiceAccount", "RoleBinding", "ConfigMap", "Deployment", "Service"]
    ingress = GatewayIngress(enabled=True, className="nginx", host="{namespace}.ai.example.com", tlsSecret="wild",
                             annotations={"x/y": "z"})  # fmt: skip
    got = _render(GatewayDefaults(ingress=ingress))["Ingress"]
    assert got["spec"]["ingressClassName"] == "nginx"
    assert got["spec"]["rules"][0]["host"] == "team-a.ai.example.com"
    assert got["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"] == {"name": "modelgate-gateway",
                                                                                 "port": {"name": "http"}}  # fmt: skip
    assert got["spec"]["tls"] == [{"secretName": "wild", "hosts": ["team-a.ai.example.com"]}]
    assert got["metadata"]["annotations"] == {"x/y": "z"}
    bare = _render(GatewayDefaults(ingress=GatewayIngress(enabled=True)))["Ingress"]
    assert "host" not in bare["spec"]["rules"][0]
    assert "tls" not in bare["spec"]


def test_flags_follow_the_operator_defaults() -> None:
    command = _render(GatewayDefaults(refuse_gitops=True),
                      ProxyDefaults(auth=AuthDefaults(api_server="https://10.0.0.1:6443")))["Deployment"]  # fmt: skip
    argv = command["spec"]["template"]["spec"]["containers"][0]["command"]
    assert argv[argv.index("--management-server") + 1] == "https://10.0.0.1:6443"
    assert "--management-refuse-gitops" in argv
    assert "--management-server" not in _render(GatewayDefaults())["Deployment"]["spec"]["template"]["spec"][
        "containers"][0]["command"]


@pytest.mark.parametrize("bad", [{"enabled": "maybe"}, {"host": "h" * 254}, {"tls": "x"}])
def test_ingress_flag_refuses_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        GatewayIngress.model_validate_json(json.dumps(bad))


def test_at_the_endpoint_bound_every_object_stays_far_below_the_api_servers_limit() -> None:
    n = gateway_sync.MAX_ENDPOINTS
    owners = [Owner(name=f"{'e' * 58}-{i:04d}", namespace=NS, uid=f"{i:08d}-0000-0000-0000-000000000000")
              for i in range(n)]  # fmt: skip
    references = {f"{'s' * 58}-{i:04d}": [f"{'k' * 60}-{j}" for j in range(2)] for i in range(n)}
    docs = render_gateway.render(NS, owners, references, "d" * 64, ProxyDefaults(), GatewayDefaults())
    sizes = {d["kind"]: len(json.dumps(d)) for d in docs}
    print("bytes per object at the bound:", sizes)
    assert max(sizes.values()) < 1_000_000, sizes  # etcd's default request limit is 1.5 MiB
    assert len(docs[3]["spec"]["template"]["spec"]["volumes"][2]["projected"]["sources"]) == n
