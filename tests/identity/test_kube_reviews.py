"""TokenReview and SubjectAccessReview against the test suite's real etcd + kube-apiserver.

The proxy side is the real code path: plain HTTPS over aiohttp with a ServiceAccount token of a ``modelgate-proxy``
account that holds only the shipped ``modelgate-proxy-reviews`` ClusterRole, and the cluster CA. Callers are
ServiceAccounts with tokens minted through the TokenRequest API (``kubectl create token``), with and without the
proxy's audience; query permission is the shipped ``modelgate-query`` ClusterRole bound with RoleBindings.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from modelgate_dev.devcluster import DevCluster
from modelgate_proxy.errors import IdentityUnavailable
from modelgate_proxy.exchange import Principal
from modelgate_proxy.stages.identity.bearer import Credential
from modelgate_proxy.stages.identity.check_cache import CacheBounds
from modelgate_proxy.stages.identity.kubeapi import KubeApi, KubeApiSettings
from modelgate_proxy.stages.identity.sar import SubjectAccessReviewAuthorizer
from modelgate_proxy.stages.identity.tokenreview import TokenReviewAuthenticator

FILES = Path(__file__).resolve().parents[2] / "charts" / "modelgate" / "files"
AUDIENCE = "modelgate.io/proxy"
APISERVER_TOKEN_CACHE = 10.0
"""kube-apiserver caches successful token authentications itself for 10 s (its built-in token cache), so a
TokenReview keeps vouching for a deleted ServiceAccount's token that long; the proxy's bound adds to it."""


def _proxy_api(k8s: DevCluster, namespace: str, tmp_path: Path, *, bind: bool = True) -> KubeApi:
    """A KubeApi as the proxy would have it: its own ServiceAccount token and the cluster CA."""
    k8s.kubectl("apply", "-f", str(FILES / "modelgate-proxy-reviews-clusterrole.yaml"))
    k8s.kubectl("create", "serviceaccount", "modelgate-proxy", "-n", namespace)
    if bind:
        k8s.kubectl("create", "clusterrolebinding", f"{namespace}-reviews", "--clusterrole=modelgate-proxy-reviews",
                    f"--serviceaccount={namespace}:modelgate-proxy")
    if bind:
        await_rbac(k8s, namespace, "create", "tokenreviews.authentication.k8s.io")
    token = tmp_path / "token"
    token.write_text(k8s.kubectl("create", "token", "modelgate-proxy", "-n", namespace).stdout.strip())
    return KubeApi(KubeApiSettings(server=k8s.server, token_file=token, ca_file=k8s.dir / "pki" / "ca.crt"))


def await_rbac(k8s: DevCluster, namespace: str, verb: str, resource: str, sa: str = "modelgate-proxy",
               *, user: str | None = None, group: str | None = None) -> None:
    """Until the API server's authorizer grants what was just bound (its RBAC cache lags a little under load)."""
    who = [f"--as={user or f'system:serviceaccount:{namespace}:{sa}'}"] + ([f"--as-group={group}"] if group else [])
    deadline = time.monotonic() + 15
    while k8s.kubectl("auth", "can-i", verb, resource, "-n", namespace, *who, check=False).stdout.strip() != "yes":
        assert time.monotonic() < deadline, f"RBAC never granted {verb} {resource} to {who}"
        time.sleep(0.1)


def _caller_token(k8s: DevCluster, namespace: str, name: str, *audiences: str) -> str:
    args = [a for aud in audiences for a in ("--audience", aud)]
    return k8s.kubectl("create", "token", name, "-n", namespace, *args).stdout.strip()


def _run(api: KubeApi, fn: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    async def scenario() -> Any:
        try:
            return await fn()
        finally:
            await api.close()

    return asyncio.run(scenario())


def test_tokenreview_requires_the_proxys_audience(k8s: DevCluster, namespace: str, tmp_path: Path) -> None:
    api = _proxy_api(k8s, namespace, tmp_path)
    k8s.kubectl("create", "serviceaccount", "caller", "-n", namespace)
    good = _caller_token(k8s, namespace, "caller", AUDIENCE)
    also_good = _caller_token(k8s, namespace, "caller", "something-else", AUDIENCE)
    api_server_audience = _caller_token(k8s, namespace, "caller")
    other = _caller_token(k8s, namespace, "caller", "another-service")
    auth = TokenReviewAuthenticator(api, AUDIENCE, cache=CacheBounds(ttl=0, negative_ttl=0))
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")

    async def scenario() -> list[Principal | None]:
        return [await auth.authenticate(Credential(t)) for t in (good, also_good, api_server_audience, other,
                                                                  tampered, "not-a-jwt", "a.b.c")]

    got = _run(api, scenario)
    user = f"system:serviceaccount:{namespace}:caller"
    assert got[0] is not None
    assert got[0].kind == "service_principal"
    assert got[0].name == user
    assert {"system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"} <= set(got[0].groups)
    assert got[1] == got[0]
    assert got[2:] == [None] * 5


def test_tokenreview_results_are_cached_and_a_deleted_serviceaccount_is_refused_after_the_bound(
    k8s: DevCluster, namespace: str, tmp_path: Path
) -> None:
    api = _proxy_api(k8s, namespace, tmp_path)
    k8s.kubectl("create", "serviceaccount", "caller", "-n", namespace)
    token = Credential(_caller_token(k8s, namespace, "caller", AUDIENCE))
    ttl = 1.0
    auth = TokenReviewAuthenticator(api, AUDIENCE, cache=CacheBounds(ttl=ttl, negative_ttl=0.5))

    async def scenario() -> float:
        assert await auth.authenticate(token) is not None
        assert len(auth.cache) == 1
        assert token.secret not in repr(auth.cache._entries)  # keyed by the digest
        await asyncio.to_thread(k8s.kubectl, "delete", "serviceaccount", "caller", "-n", namespace)
        t0 = time.monotonic()
        while await auth.authenticate(token) is not None:
            assert time.monotonic() - t0 < ttl + APISERVER_TOKEN_CACHE + 5, "a deleted ServiceAccount's token was accepted"
            await asyncio.sleep(0.05)
        return time.monotonic() - t0

    elapsed = _run(api, scenario)
    print(f"token of a deleted ServiceAccount refused after {elapsed * 1000:.0f} ms (cache ttl {ttl} s)")
    assert elapsed <= ttl + APISERVER_TOKEN_CACHE + 1.0


def test_query_permission_is_rbac_and_removing_the_rolebinding_denies_within_the_cache_bound(
    k8s: DevCluster, namespace: str, tmp_path: Path
) -> None:
    api = _proxy_api(k8s, namespace, tmp_path)
    k8s.kubectl("apply", "-f", str(FILES / "modelgate-query-clusterrole.yaml"))
    k8s.kubectl("create", "serviceaccount", "caller", "-n", namespace)
    ttl = 1.0
    authz = SubjectAccessReviewAuthorizer(api, cache=CacheBounds(ttl=ttl, negative_ttl=0.2))
    sa = Principal("service_principal", f"system:serviceaccount:{namespace}:caller",
                   ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"))

    async def scenario() -> float:
        assert await authz.may_query(sa, namespace, "chat") is False
        await asyncio.to_thread(k8s.kubectl, "create", "rolebinding", "chat-query", "--clusterrole=modelgate-query",
                                f"--serviceaccount={namespace}:caller", "-n", namespace)
        t0 = time.monotonic()
        while not await authz.may_query(sa, namespace, "chat"):
            assert time.monotonic() - t0 < 5, "a new RoleBinding was not honoured"
            await asyncio.sleep(0.05)
        assert await authz.may_query(sa, "default", "chat") is False  # bound in its namespace only
        await asyncio.to_thread(k8s.kubectl, "delete", "rolebinding", "chat-query", "-n", namespace)
        t0 = time.monotonic()
        while await authz.may_query(sa, namespace, "chat"):
            assert time.monotonic() - t0 < ttl + 5, "a removed RoleBinding still allowed queries"
            await asyncio.sleep(0.05)
        return time.monotonic() - t0

    elapsed = _run(api, scenario)
    print(f"RoleBinding removal denied queries after {elapsed * 1000:.0f} ms (cache ttl {ttl} s)")
    assert elapsed <= ttl + 1.0


def test_sar_works_for_any_user_and_groups_and_for_one_endpoint_by_name(
    k8s: DevCluster, namespace: str, tmp_path: Path
) -> None:
    """API-key and OIDC principals are plain user names and groups; a Role can name one endpoint."""
    api = _proxy_api(k8s, namespace, tmp_path)
    k8s.kubectl("apply", "-f", str(FILES / "modelgate-query-clusterrole.yaml"))
    k8s.kubectl("create", "rolebinding", "ds-query", "--clusterrole=modelgate-query", "--group=data-scientists",
                "-n", namespace)
    k8s.kubectl("create", "role", "only-chat", "--verb=query", "--resource=servingendpoints.serving.modelgate.io",
                "--resource-name=chat", "-n", namespace)
    k8s.kubectl("create", "rolebinding", "bob-chat", "--role=only-chat", "--user=bob@example.com", "-n", namespace)
    await_rbac(k8s, namespace, "query", "servingendpoints.serving.modelgate.io/embed", user="x", group="data-scientists")
    await_rbac(k8s, namespace, "query", "servingendpoints.serving.modelgate.io/chat", user="bob@example.com")
    # the namespaced-install variant: LocalSubjectAccessReview with a namespaced Role only
    k8s.kubectl("create", "role", "local-reviews", "--verb=create",
                "--resource=localsubjectaccessreviews.authorization.k8s.io", "-n", namespace)
    k8s.kubectl("create", "rolebinding", "proxy-local-reviews", "--role=local-reviews",
                f"--serviceaccount={namespace}:modelgate-proxy", "-n", namespace)
    await_rbac(k8s, namespace, "create", "localsubjectaccessreviews.authorization.k8s.io")
    authz = SubjectAccessReviewAuthorizer(api, cache=CacheBounds(ttl=0, negative_ttl=0))
    local = SubjectAccessReviewAuthorizer(api, cache=CacheBounds(ttl=0, negative_ttl=0), local=True)
    alice = Principal("user", "alice@example.com", ("data-scientists",))
    bob = Principal("user", "bob@example.com", ("other",))
    eve = Principal("user", "eve@example.com", ())

    async def scenario() -> list[bool]:
        out = []
        for a in (authz, local):
            out += [await a.may_query(alice, namespace, "chat"), await a.may_query(alice, namespace, "embed"),
                    await a.may_query(bob, namespace, "chat"), await a.may_query(bob, namespace, "embed"),
                    await a.may_query(eve, namespace, "chat")]
        out.append(await authz.may_query(Principal("anonymous", "anonymous"), namespace, "chat"))
        out.append(await authz.may_query(alice, "Bad/../ns", "chat"))
        return out

    assert _run(api, scenario) == [True, True, True, False, False] * 2 + [False, False]


def test_the_proxy_without_review_rights_or_without_the_api_server_is_503_never_an_allow(
    k8s: DevCluster, namespace: str, tmp_path: Path
) -> None:
    api = _proxy_api(k8s, namespace, tmp_path, bind=False)
    k8s.kubectl("create", "serviceaccount", "caller", "-n", namespace)
    token = Credential(_caller_token(k8s, namespace, "caller", AUDIENCE))
    auth = TokenReviewAuthenticator(api, AUDIENCE)
    authz = SubjectAccessReviewAuthorizer(api)
    p = Principal("user", "alice", ())

    async def scenario() -> list[IdentityUnavailable]:
        errors = []
        for call in (lambda: auth.authenticate(token), lambda: authz.may_query(p, namespace, "chat")):
            with pytest.raises(IdentityUnavailable) as info:
                await call()
            errors.append(info.value)
        return errors

    errors = _run(api, scenario)
    assert [e.status for e in errors] == [503, 503]
    assert "HTTP 403" in errors[0].message
    assert token.secret not in errors[0].message
    dead = KubeApi(KubeApiSettings(server="https://127.0.0.1:9", token_file=tmp_path / "token",
                                   ca_file=k8s.dir / "pki" / "ca.crt", timeout=2))
    down = TokenReviewAuthenticator(dead, AUDIENCE)

    async def unreachable() -> None:
        with pytest.raises(IdentityUnavailable, match="could not be reached"):
            await down.authenticate(token)
        assert len(down.cache) == 0  # a failure is never cached

    _run(dead, unreachable)


def test_concurrent_requests_with_one_new_token_make_one_tokenreview(
    k8s: DevCluster, namespace: str, tmp_path: Path
) -> None:
    class CountingKubeApi(KubeApi):  # the real client, counting what it sends to the real API server
        calls = 0

        async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
            CountingKubeApi.calls += 1
            return await super().create(path, body)

    _proxy_api(k8s, namespace, tmp_path)
    api = CountingKubeApi(KubeApiSettings(server=k8s.server, token_file=tmp_path / "token",
                                          ca_file=k8s.dir / "pki" / "ca.crt"))
    k8s.kubectl("create", "serviceaccount", "caller", "-n", namespace)
    token = Credential(_caller_token(k8s, namespace, "caller", AUDIENCE))
    auth = TokenReviewAuthenticator(api, AUDIENCE)

    async def scenario() -> list[Principal | None]:
        return await asyncio.gather(*(auth.authenticate(token) for _ in range(50)))

    got = _run(api, scenario)
    assert len(got) == 50
    assert all(p is not None and p.name.endswith(":caller") for p in got)
    assert CountingKubeApi.calls == 1


def test_a_missing_token_file_or_ca_is_503(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    no_token = KubeApi(KubeApiSettings(server="https://127.0.0.1:9", token_file=tmp_path / "absent", ca_file=ca))
    auth = TokenReviewAuthenticator(no_token, AUDIENCE)

    async def scenario() -> None:
        with pytest.raises(IdentityUnavailable, match="cluster CA"):
            await auth.authenticate(Credential("a.b.c"))
        ca.write_text("not a certificate\n")
        with pytest.raises(IdentityUnavailable, match="cluster CA"):
            await auth.authenticate(Credential("a.b.c"))
        system = Path("/etc/ssl/certs/ca-certificates.crt")
        if system.exists():
            good_ca = KubeApi(KubeApiSettings(server="https://127.0.0.1:9", token_file=tmp_path / "absent",
                                              ca_file=system))
            try:
                with pytest.raises(IdentityUnavailable, match="ServiceAccount token"):
                    await TokenReviewAuthenticator(good_ca, AUDIENCE).authenticate(Credential("a.b.c"))
            finally:
                await good_ca.close()

    _run(no_token, scenario)
