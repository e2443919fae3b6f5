"""The API-key Secret convention on the real API server: the kubectl/openssl recipe (hack/mint-api-key.sh) and
the Python minter's manifest both make Secrets that the proxy's parser accepts, as the API server returns them
(base64 ``data``), and neither Secret holds the key."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from modelgate_dev.devcluster import DevCluster
from modelgate_proxy.errors import IdentityUnavailable
from modelgate_proxy.exchange import Principal
from modelgate_proxy.stages.identity.apikey_files import record_from_secret
from modelgate_proxy.stages.identity.apikey_mint import mint
from modelgate_proxy.stages.identity.apikey_watch import ApiKeySecretWatch
from modelgate_proxy.stages.identity.apikeys import ApiKeyAuthenticator, ApiKeyStore
from modelgate_proxy.stages.identity.kubeapi import KubeApi, KubeApiSettings

from .test_kube_reviews import _proxy_api, await_rbac

SCRIPT = Path(__file__).resolve().parents[2] / "hack" / "mint-api-key.sh"


def _secret(k8s: DevCluster, namespace: str, name: str) -> dict[str, object]:
    return json.loads(k8s.kubectl("get", "secret", name, "-n", namespace, "-o", "json").stdout)  # type: ignore[no-any-return]


def test_kubectl_recipe_and_python_minter_make_secrets_the_proxy_accepts(k8s: DevCluster, namespace: str) -> None:
    out = subprocess.run(["bash", str(SCRIPT), namespace, "svc-batch", "ds,ml", "service_principal"],
                         capture_output=True, text=True, check=True, timeout=120, env=k8s.env())
    key = out.stdout.strip()
    assert key.startswith("mgk_")
    assert len(key) == 60
    key_id = key.split("_")[1]
    from_recipe = _secret(k8s, namespace, f"modelgate-api-key-{key_id}")
    minted = mint("alice@example.com", namespace=namespace, groups=["ds"])
    k8s.kubectl("apply", "-f", "-", input=yaml.safe_dump(minted.manifest))
    from_python = _secret(k8s, namespace, f"modelgate-api-key-{minted.key_id}")
    listed = json.loads(k8s.kubectl("get", "secrets", "-n", namespace, "-l", "serving.modelgate.io/api-key=true",
                                    "-o", "json").stdout)["items"]
    assert {s["metadata"]["name"] for s in listed} == {f"modelgate-api-key-{key_id}", f"modelgate-api-key-{minted.key_id}"}
    records = [record_from_secret(s) for s in (from_recipe, from_python)]
    assert None not in records
    auth = ApiKeyAuthenticator(ApiKeyStore([r for r in records if r is not None]))
    assert auth.check(key) == Principal("service_principal", "svc-batch", ("ds", "ml"))
    assert auth.check(minted.key) == Principal("user", "alice@example.com", ("ds",))
    for secret, k in ((from_recipe, key), (from_python, minted.key)):
        text = json.dumps(secret)
        decoded = " ".join(base64.b64decode(v).decode() for v in secret["data"].values())  # type: ignore[attr-defined]
        assert k not in text
        assert k not in decoded
        assert secret["type"] == "serving.modelgate.io/api-key"


def _watch_api(k8s: DevCluster, namespace: str, tmp_path: Path) -> KubeApi:
    """The proxy's client, with a Role to get/list/watch Secrets in the namespace (what the watch needs)."""
    api = _proxy_api(k8s, namespace, tmp_path)
    k8s.kubectl("create", "role", "api-key-secrets", "--verb=get,list,watch", "--resource=secrets", "-n", namespace)
    k8s.kubectl("create", "rolebinding", "proxy-api-key-secrets", "--role=api-key-secrets",
                f"--serviceaccount={namespace}:modelgate-proxy", "-n", namespace)
    await_rbac(k8s, namespace, "watch", "secrets")
    return api


async def wait_current(store: ApiKeyStore, bound: float = 15.0) -> None:
    """Until the watch's first list worked: a RoleBinding created just before may take the API server's RBAC
    cache a moment under load, and until then the proxy answers keys 503 (and retries the list)."""
    t0 = time.monotonic()
    while store.current_until != float("inf"):
        assert time.monotonic() - t0 < bound, "the API-key Secret list never succeeded"
        await asyncio.sleep(0.05)


def test_secret_watch_accepts_new_keys_and_revokes_deleted_ones_within_the_bound(
    k8s: DevCluster, namespace: str, tmp_path: Path
) -> None:
    api = _watch_api(k8s, namespace, tmp_path)
    before = mint("alice@example.com", namespace=namespace)
    k8s.kubectl("apply", "-f", "-", input=yaml.safe_dump(before.manifest))
    broken = mint("x", namespace=namespace).manifest
    broken["stringData"]["sha256"] = "nothex"  # labelled but malformed: ignored, the others work
    broken["metadata"]["name"] = "modelgate-api-key-broken"
    k8s.kubectl("apply", "-f", "-", input=yaml.safe_dump(broken))
    watch = ApiKeySecretWatch(api, namespace)
    auth = ApiKeyAuthenticator(watch.store)

    async def wait(t0: float, cond: Callable[[], bool], what: str, bound: float = 5.0) -> float:
        """Seconds from ``t0`` (before the kubectl command, which itself takes ~0.1-0.3 s) until ``cond``."""
        while not cond():
            assert time.monotonic() - t0 < bound, what
            await asyncio.sleep(0.01)
        return time.monotonic() - t0

    async def scenario() -> dict[str, float]:
        await watch.start()
        await wait_current(watch.store)
        try:
            assert auth.check(before.key) == Principal("user", "alice@example.com")
            added = mint("bob@example.com", namespace=namespace, groups=["ds"])
            t0 = time.monotonic()
            await asyncio.to_thread(k8s.kubectl, "apply", "-f", "-", input=yaml.safe_dump(added.manifest))
            t_add = await wait(t0, lambda: auth.check(added.key) is not None, "a new key Secret was not picked up")
            t0 = time.monotonic()
            await asyncio.to_thread(k8s.kubectl, "delete", "secret", f"modelgate-api-key-{before.key_id}",
                                    "-n", namespace, "--wait=false")
            t_del = await wait(t0, lambda: auth.check(before.key) is None, "a deleted key Secret was still accepted")
            t0 = time.monotonic()
            await asyncio.to_thread(k8s.kubectl, "label", "secret", f"modelgate-api-key-{added.key_id}",
                                    "-n", namespace, "serving.modelgate.io/api-key-")
            t_unlabel = await wait(t0, lambda: auth.check(added.key) is None, "an unlabelled key was still accepted")
            assert watch.lists == 1
            return {"add": t_add, "delete": t_del, "unlabel": t_unlabel}
        finally:
            await watch.close()
            await api.close()

    got = asyncio.run(scenario())
    print("Secret watch, from the start of the kubectl command: "
          + ", ".join(f"{k} effective after {v * 1000:.0f} ms" for k, v in got.items()))
    assert got["delete"] < 2.0


def test_without_a_current_key_list_keys_are_503_never_accepted(k8s: DevCluster, tmp_path: Path) -> None:
    dead = KubeApi(KubeApiSettings(server="https://127.0.0.1:9", token_file=tmp_path / "token",
                                   ca_file=k8s.dir / "pki" / "ca.crt", timeout=1))
    (tmp_path / "token").write_text("x")
    minted = mint("alice")
    record = record_from_secret(minted.manifest)
    assert record is not None
    watch = ApiKeySecretWatch(dead, "default", ApiKeyStore([record]), max_stale=0.5)

    async def scenario() -> None:
        await watch.start()
        try:
            with pytest.raises(IdentityUnavailable):
                ApiKeyAuthenticator(watch.store).check(minted.key)
            assert ApiKeyAuthenticator(watch.store).check("not-a-key") is None  # only keys are affected
        finally:
            await watch.close()
            await dead.close()

    asyncio.run(scenario())


def test_the_watch_resumes_after_the_server_ends_it_without_relisting(
    k8s: DevCluster, namespace: str, tmp_path: Path
) -> None:
    api = _watch_api(k8s, namespace, tmp_path)
    watch = ApiKeySecretWatch(api, namespace, watch_seconds=1)
    auth = ApiKeyAuthenticator(watch.store)

    async def scenario() -> None:
        await watch.start()
        await wait_current(watch.store)
        try:
            await asyncio.sleep(2.5)  # the server ended the watch (timeoutSeconds=1) at least twice
            minted = mint("carol", namespace=namespace)
            await asyncio.to_thread(k8s.kubectl, "apply", "-f", "-", input=yaml.safe_dump(minted.manifest))
            t0 = time.monotonic()
            while auth.check(minted.key) is None:
                assert time.monotonic() - t0 < 5, "a key added after the watch was re-opened was not picked up"
                await asyncio.sleep(0.02)
            assert watch.lists == 1
        finally:
            await watch.close()
            await api.close()

    asyncio.run(scenario())
