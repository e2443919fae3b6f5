"""The API-key Secret convention on the real API server: the kubectl/openssl recipe (hack/mint-api-key.sh) and
the Python minter's manifest both make Secrets that the proxy's parser accepts, as the API server returns them
(base64 ``data``), and neither Secret holds the key."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import yaml

from modelgate_operator.devcluster import DevCluster
from modelgate_proxy.authn.apikey_files import record_from_secret
from modelgate_proxy.authn.apikey_mint import mint
from modelgate_proxy.authn.apikeys import ApiKeyAuthenticator, ApiKeyStore
from modelgate_proxy.identity import Principal

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
