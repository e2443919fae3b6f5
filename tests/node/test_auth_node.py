"""Authentication and query permission end to end on the real node: the operator renders a bearer-mode proxy,
the pod runs as the namespace's ServiceAccount with its projected token, and calls the real API server (through
the relay) for TokenReview, SubjectAccessReview and the API-key Secret watch.

- a ServiceAccount token minted for the audience: 403 without a RoleBinding, 200 with one to ``modelgate-query``,
  403 again after it is removed, within the SAR cache's bound (measured);
- per-user and per-group rate limits act on API-key principals (labelled Secrets), through the operator.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml

from modelgate_dev.node.cluster import NodeCluster
from modelgate_operator import render
from modelgate_proxy.stages.identity.apikey_mint import mint
from tests.operator.harness import REPO, condition, endpoint, put_secret

from .harness import admin, apply_endpoint, chat_spec, operator_on, provider_on_bridge, proxy_pods, wait

NAME = "chat"
AUDIENCE = "modelgate.io/proxy"
SAR_TTL = 10.0
"""The proxy's default SubjectAccessReview cache (allow 10 s, deny 2 s): the bound a removed RoleBinding takes."""
QUERY_ROLE = REPO / "charts" / "modelgate" / "files" / "modelgate-query-clusterrole.yaml"


def _post(base: str, credential: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {credential}"} if credential is not None else {}
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
    return httpx.post(f"{base}/serving-endpoints/{NAME}/invocations", json=body, headers=headers, timeout=20,
                      trust_env=False)  # fmt: skip


def _ready_base(nc: NodeCluster, ns: str) -> str:
    def ready() -> bool:
        obj = endpoint(admin(nc), ns, NAME)
        cond = condition(obj, "Ready")
        return bool(cond and cond["status"] == "True" and obj["status"].get("observedGeneration") == obj["metadata"]["generation"])

    wait("Ready=True", ready, 180)
    (pod,) = proxy_pods(admin(nc), ns, NAME)
    assert pod.status is not None
    assert pod.status.podIP
    return f"http://{pod.status.podIP}:{render.PROXY_PORT}"


def _until(status: int, fn: Callable[[], httpx.Response], timeout: float) -> float:
    """Seconds until ``fn`` answers ``status`` (polled every 50 ms)."""
    t0 = time.monotonic()
    wait(f"HTTP {status}", lambda: fn().status_code == status, timeout, interval=0.05)
    return time.monotonic() - t0


def test_service_account_token_needs_the_query_permission(
    node_cluster: NodeCluster, node_namespace: str, tmp_path: Path, report: Callable[[str], None],
) -> None:
    nc, ns = node_cluster, node_namespace
    k = nc.cluster
    k.kubectl("apply", "-f", str(QUERY_ROLE))
    put_secret(admin(nc), ns, "openai", {"key": "sk-node-auth"})
    with provider_on_bridge("sk-node-auth") as api_base, operator_on(nc, ns, tmp_path / "operator.log") as op:
        apply_endpoint(nc, ns, NAME, chat_spec(api_base, authentication={"mode": "bearer"}))
        base = _ready_base(nc, ns)
        status = endpoint(admin(nc), ns, NAME)["status"]
        assert status["authentication"]["audience"] == AUDIENCE
        assert condition(endpoint(admin(nc), ns, NAME), "Authenticated")["status"] == "True"  # type: ignore[index]

        k.kubectl("create", "serviceaccount", "caller", "-n", ns)
        token = k.kubectl("create", "token", "caller", "-n", ns, "--audience", AUDIENCE).stdout.strip()
        other = k.kubectl("create", "token", "caller", "-n", ns, "--audience", "something-else").stdout.strip()

        none = _post(base, None)
        assert none.status_code == 401, none.text
        assert none.headers["WWW-Authenticate"].startswith("Bearer")
        assert _post(base, other).status_code == 401  # minted for another audience
        assert _post(base, "garbage").status_code == 401
        denied = _post(base, token)
        assert denied.status_code == 403, denied.text
        assert "query" in denied.text
        assert NAME in denied.text
        assert token not in denied.text

        k.kubectl("create", "rolebinding", "caller-query", "--clusterrole=modelgate-query",
                  f"--serviceaccount={ns}:caller", "-n", ns)  # fmt: skip
        granted = _until(200, lambda: _post(base, token), 2 * SAR_TTL)
        ok = _post(base, token)
        assert ok.status_code == 200, ok.text
        k.kubectl("delete", "rolebinding", "caller-query", "-n", ns)
        revoked = _until(403, lambda: _post(base, token), 2 * SAR_TTL)
        report(f"ServiceAccount token: allowed {granted:.2f}s after the RoleBinding was created, denied again "
               f"{revoked:.2f}s after it was deleted (SAR cache bound {SAR_TTL:.0f}s)")  # fmt: skip
        assert revoked <= SAR_TTL + 1.0
        logs = k.kubectl("logs", "-n", ns, proxy_pods(admin(nc), ns, NAME)[0].metadata.name).stdout  # type: ignore[union-attr]
        assert token not in logs
        assert token not in op.logs()


def test_per_user_and_per_group_rate_limits_act_on_api_key_principals(
    node_cluster: NodeCluster, node_namespace: str, tmp_path: Path, report: Callable[[str], None],
) -> None:
    nc, ns = node_cluster, node_namespace
    k = nc.cluster
    k.kubectl("apply", "-f", str(QUERY_ROLE))
    keys = {
        "alice": mint("alice@example.com", namespace=ns),
        "dave": mint("dave@example.com", namespace=ns),
        "bob": mint("bob@example.com", namespace=ns, groups=["team-b"]),
        "carol": mint("carol@example.com", namespace=ns, groups=["team-b"]),
        "probe": mint("probe@example.com", namespace=ns),  # no query permission: tells when the keys are known
    }
    for minted in keys.values():
        k.kubectl("apply", "-f", "-", input=yaml.safe_dump(minted.manifest))
    k.kubectl("create", "rolebinding", "people-query", "--clusterrole=modelgate-query", "--user=alice@example.com",
              "--user=dave@example.com", "--group=team-b", "-n", ns)  # fmt: skip
    put_secret(admin(nc), ns, "openai", {"key": "sk-node-limits"})
    limits = [{"key": "user", "calls": 2, "renewalPeriod": "minute"},
              {"key": "user_group", "principal": "team-b", "calls": 3, "renewalPeriod": "minute"}]  # fmt: skip
    with provider_on_bridge("sk-node-limits") as api_base, operator_on(nc, ns, tmp_path / "operator.log"):
        spec = chat_spec(api_base, authentication={"mode": "bearer"})
        spec["aiGateway"] = {"rateLimits": limits}
        apply_endpoint(nc, ns, NAME, spec)
        base = _ready_base(nc, ns)
        _until(403, lambda: _post(base, keys["probe"].key), 30)  # authenticated (the watch has the keys), denied

        def codes(who: str, n: int) -> list[int]:
            return [_post(base, keys[who].key).status_code for _ in range(n)]

        alice, dave = codes("alice", 3), codes("dave", 2)
        bob, carol = codes("bob", 2), codes("carol", 2)
        report(f"per-user limit 2/min: alice {alice}, dave {dave}; group team-b 3/min: bob {bob}, carol {carol}")
        assert alice == [200, 200, 429]  # her own count
        assert dave == [200, 200]  # another user's count is his own
        assert bob == [200, 200]
        assert carol == [200, 429]  # the group's third call, then the group is spent
        assert _post(base, None).status_code == 401
