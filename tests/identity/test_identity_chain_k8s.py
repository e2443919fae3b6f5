"""The phase-A parts together, as the identity stage will run them: one :class:`AuthConfig` built into a bearer
chain (API keys from a directory, OIDC from the stand-in issuer, Kubernetes tokens by TokenReview) and RBAC by
SubjectAccessReview against the real kube-apiserver. Every credential used is then searched for in the logs and
the error messages (it must appear in neither)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from modelgate_dev.devcluster import DevCluster
from modelgate_proxy.errors import GatewayError, IdentityUnavailable, QueryDenied, Unauthenticated
from modelgate_proxy.exchange import Principal
from modelgate_proxy.stages.identity.apikey_mint import mint
from modelgate_proxy.stages.identity.auth_config import AuthConfig, AuthRuntime, build
from modelgate_proxy.stages.identity.auth_modes import check_query
from tests.standins.oidc_issuer import OidcIssuerStandIn
from tests.standins.server import serve_app

from .test_kube_reviews import AUDIENCE, FILES, _caller_token, _proxy_api, await_rbac


async def _query(identity: AuthRuntime, namespace: str, credential: str | None, endpoint: str = "chat") -> Principal:
    headers = [] if credential is None else [(b"authorization", f"Bearer {credential}".encode())]
    principal = await identity.authentication.principal(headers)
    await check_query(identity.authorizer, principal, namespace, endpoint)
    return principal


def test_every_credential_kind_is_authenticated_and_authorized_by_rbac(
    k8s: DevCluster, namespace: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api = _proxy_api(k8s, namespace, tmp_path)  # creates the proxy's ServiceAccount, its binding and token file
    asyncio.run(api.close())
    k8s.kubectl("apply", "-f", str(FILES / "modelgate-query-clusterrole.yaml"))
    k8s.kubectl("create", "serviceaccount", "caller", "-n", namespace)
    k8s.kubectl("create", "serviceaccount", "stranger", "-n", namespace)
    k8s.kubectl("create", "rolebinding", "q", "--clusterrole=modelgate-query", "--group=data-scientists",
                f"--serviceaccount={namespace}:caller", "-n", namespace)
    await_rbac(k8s, namespace, "query", "servingendpoints.serving.modelgate.io/chat", "caller")
    await_rbac(k8s, namespace, "query", "servingendpoints.serving.modelgate.io/chat", user="x", group="data-scientists")
    keys = tmp_path / "keys"
    keys.mkdir()
    alice, bob = mint("alice@example.com", groups=["data-scientists"]), mint("bob@example.com")
    for name, minted in (("alice", alice), ("bob", bob)):
        (keys / f"{name}.yaml").write_text(yaml.safe_dump(minted.manifest))
    sa_token = _caller_token(k8s, namespace, "caller", AUDIENCE)
    stranger_token = _caller_token(k8s, namespace, "stranger", AUDIENCE)
    wrong_audience = _caller_token(k8s, namespace, "caller")
    issuer = OidcIssuerStandIn()
    with serve_app(issuer.app) as url, caplog.at_level(logging.DEBUG):
        issuer.url = url
        carol = issuer.token(sub="carol@example.com", groups=["data-scientists"])
        dave = issuer.token(sub="dave@example.com", groups=[])
        expired = issuer.token(iat=int(time.time()) - 3600, exp=int(time.time()) - 600)
        config = AuthConfig.model_validate({
            "mode": "bearer", "authorize": "rbac",
            "api_keys": {"path": str(keys), "reload_interval": 0.2},
            "oidc": {"issuer": url, "audience": "modelgate"},
            "kubernetes": {"audience": AUDIENCE, "server": k8s.server, "token_file": str(tmp_path / "token"),
                           "ca_file": str(k8s.dir / "pki" / "ca.crt")},
            "cache": {"ttl": 1, "negative_ttl": 0.2},
        })
        identity = build(config)
        errors: list[GatewayError] = []

        async def scenario() -> dict[str, object]:
            await identity.start()
            out: dict[str, object] = {}
            try:
                for label, cred in (("api key", alice.key), ("oidc", carol), ("k8s", sa_token),
                                    ("api key denied", bob.key), ("oidc denied", dave), ("k8s denied", stranger_token),
                                    ("no credential", None), ("garbage", "garbage"), ("expired oidc", expired),
                                    ("k8s wrong audience", wrong_audience)):
                    try:
                        out[label] = await _query(identity, namespace, cred)
                    except GatewayError as e:
                        errors.append(e)
                        out[label] = (e.status, type(e).__name__, e.headers.get("WWW-Authenticate", ""))
                (keys / "alice.yaml").unlink()
                t0 = time.monotonic()
                while True:
                    try:
                        await _query(identity, namespace, alice.key)
                    except Unauthenticated:
                        break
                    assert time.monotonic() - t0 < 3, "a deleted API key was still accepted"
                    await asyncio.sleep(0.02)
                out["revoked after"] = time.monotonic() - t0
            finally:
                await identity.close()
            return out

        got = asyncio.run(scenario())
    assert got["api key"] == Principal("user", "alice@example.com", ("data-scientists",))
    assert got["oidc"] == Principal("user", "carol@example.com", ("data-scientists",))
    assert isinstance(got["k8s"], Principal)
    assert got["k8s"].name == f"system:serviceaccount:{namespace}:caller"
    for label in ("api key denied", "oidc denied", "k8s denied"):
        assert got[label] == (403, "QueryDenied", ""), label
    assert got["no credential"] == (401, "Unauthenticated", 'Bearer realm="modelgate"')
    for label in ("garbage", "expired oidc", "k8s wrong audience"):
        assert got[label] == (401, "Unauthenticated", 'Bearer realm="modelgate", error="invalid_token"'), label
    assert isinstance(got["revoked after"], float)
    assert got["revoked after"] < 0.2 + 1.0
    print(f"API key revoked {got['revoked after'] * 1000:.0f} ms after its file was deleted (reload 0.2 s)")
    denied = next(e for e in errors if isinstance(e, QueryDenied))
    assert "'chat'" in denied.message
    assert "query" in denied.message
    secrets_used = [alice.key, bob.key, carol, dave, expired, sa_token, stranger_token, wrong_audience]
    texts = [caplog.text, *(e.message for e in errors)]
    for secret in secrets_used:
        for text in texts:
            assert secret not in text
            assert secret.split(".")[-1][:16] not in text  # not even a signature or key fragment


@pytest.mark.parametrize("config", [
    {"mode": "bearer", "authorize": "authenticated"},
    {"mode": "bearer", "api_keys": {"path": "/x"}},
    {"mode": "trusted-header", "authorize": "authenticated"},
    {"mode": "bearer", "authorize": "authenticated", "oidc": {"issuer": "http://login.example.com", "audience": "a"}},
    {"mode": "bearer", "authorize": "authenticated", "oidc": {"issuer": "https://x", "audience": "a",
                                                              "algorithms": ["HS256"]}},
    {"mode": "bearer", "authorize": "authenticated", "api_keys": {"path": "/x"}, "cache": {"ttl": 3600}},
    {"mode": "bearer", "authorize": "authenticated", "api_keys": {"path": "/x"}, "surprise": 1},
])
def test_configurations_that_cannot_work_are_refused(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AuthConfig.model_validate(config)


def test_no_auth_is_explicit_and_open() -> None:
    identity = build(AuthConfig(mode="none"))
    assert identity.authentication.open
    assert asyncio.run(_query(identity, "ns", None)).kind == "anonymous"
    assert not build(AuthConfig.model_validate(
        {"mode": "trusted-header", "authorize": "authenticated", "trusted_header": {"user_header": "X-User"}}
    )).authentication.open


def test_api_keys_from_watched_secrets_through_the_built_chain(
    k8s: DevCluster, namespace: str, tmp_path: Path
) -> None:
    api = _proxy_api(k8s, namespace, tmp_path)
    asyncio.run(api.close())
    k8s.kubectl("create", "role", "api-key-secrets", "--verb=get,list,watch", "--resource=secrets", "-n", namespace)
    k8s.kubectl("create", "rolebinding", "proxy-secrets", "--role=api-key-secrets",
                f"--serviceaccount={namespace}:modelgate-proxy", "-n", namespace)
    k8s.kubectl("apply", "-f", str(FILES / "modelgate-query-clusterrole.yaml"))
    k8s.kubectl("create", "rolebinding", "q", "--clusterrole=modelgate-query", "--user=erin@example.com",
                "-n", namespace)
    await_rbac(k8s, namespace, "watch", "secrets")
    await_rbac(k8s, namespace, "query", "servingendpoints.serving.modelgate.io/chat", user="erin@example.com")
    minted = mint("erin@example.com", namespace=namespace)
    k8s.kubectl("apply", "-f", "-", input=yaml.safe_dump(minted.manifest))
    identity = build(AuthConfig.model_validate({
        "mode": "bearer", "authorize": "rbac", "api_key_secrets": {"namespace": namespace},
        "kubernetes": {"server": k8s.server, "token_file": str(tmp_path / "token"),
                       "ca_file": str(k8s.dir / "pki" / "ca.crt")},
    }))

    async def scenario() -> None:
        await identity.start()
        try:
            t0 = time.monotonic()
            while True:  # the proxy's new RoleBinding may take the API server's RBAC cache a moment under load
                try:
                    got = await _query(identity, namespace, minted.key)
                    break
                except IdentityUnavailable:
                    assert time.monotonic() - t0 < 15, "the API-key Secret list never succeeded"
                    await asyncio.sleep(0.1)
            assert got == Principal("user", "erin@example.com")
            await asyncio.to_thread(k8s.kubectl, "delete", "secret", f"modelgate-api-key-{minted.key_id}",
                                    "-n", namespace)
            t0 = time.monotonic()
            while True:
                try:
                    await _query(identity, namespace, minted.key)
                except Unauthenticated:
                    break
                assert time.monotonic() - t0 < 3, "a deleted key Secret was still accepted"
                await asyncio.sleep(0.02)
        finally:
            await identity.close()

    asyncio.run(scenario())
    with pytest.raises(ValidationError):
        AuthConfig.model_validate({"mode": "bearer", "authorize": "authenticated",
                                   "api_key_secrets": {"namespace": namespace}})
