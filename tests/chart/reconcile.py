"""What every install path must achieve once its operator runs: a sample ServingEndpoint reconciled (children,
status conditions, observed generation) and no drift for GitOps (re-applying the user's manifest is a no-op,
and the operator owns none of the fields in it)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from modelgate_dev.devcluster import DevCluster
from modelgate_operator import render
from tests.operator.harness import settled

from .helmtool import REPO_ROOT

SAMPLE = REPO_ROOT / "samples" / "openai-chat.yaml"
NAME = "openai-chat"


def get(k8s: DevCluster, kind: str, name: str, namespace: str, *, managed: bool = False) -> dict[str, Any] | None:
    flags = ["--show-managed-fields"] if managed else []
    res = k8s.kubectl("get", kind, name, "-n", namespace, "-o", "json", *flags, check=False)
    if res.returncode != 0:
        assert "NotFound" in res.stderr, res.stderr
        return None
    obj: dict[str, Any] = json.loads(res.stdout)
    return obj


def eventually(what: str, fn: Callable[[], Any], timeout: float = 30.0, detail: Callable[[], str] = str) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})\n{detail()}")


def ready_condition(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == "Ready":
            return dict(cond)
    return None


def user_manifest(k8s: DevCluster, namespace: str) -> Path:
    """The sample as a user keeps it in Git (namespace set, nothing else changed)."""
    doc = yaml.safe_load(SAMPLE.read_text())
    doc["metadata"]["namespace"] = namespace
    path = k8s.dir / f"sample-{namespace}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def reconcile_sample(k8s: DevCluster, namespace: str, logs: Callable[[], str], timeout: float = 60.0) -> dict[str, Any]:
    """Apply the sample (and the Secret it references) and wait until the operator has done its part: config valid,
    Secrets resolved, children applied, the proxy waiting for a rollout (no Deployment controller runs here, so
    Ready stays False/Progressing; tests/node sees it become Ready from real pods)."""
    key = f"sk-test-{secrets.token_hex(8)}"
    k8s.kubectl("create", "secret", "generic", "openai", "-n", namespace, f"--from-literal=api-key={key}")
    k8s.kubectl("apply", "--server-side", "-f", str(user_manifest(k8s, namespace)))

    def done() -> dict[str, Any] | None:
        obj = get(k8s, "servingendpoint", NAME, namespace)
        return settled(obj) if obj else None

    obj: dict[str, Any] = eventually(f"{NAME} reconciled", done, timeout, detail=lambda: logs()[-4000:])
    types = {c["type"] for c in obj["status"]["conditions"]}
    assert {"Ready", "ConfigValid", "SecretsResolved", "ProxyAvailable"} <= types
    child = render.child_name(NAME)
    for kind in ("configmap", "deployment", "service"):
        found = get(k8s, kind, child, namespace)
        assert found is not None, f"{kind}/{child} missing"
        owners = found["metadata"].get("ownerReferences") or []
        assert [o["uid"] for o in owners] == [obj["metadata"]["uid"]]
    assert key not in json.dumps(get(k8s, "configmap", child, namespace))
    assert key not in json.dumps(obj)
    return obj


def assert_no_drift(k8s: DevCluster, namespace: str) -> None:
    """After a full reconcile, the user's manifest applied again server-side changes nothing, `kubectl diff`
    (what Argo CD's server-side diff does) finds nothing, and the operator owns no field the user sets."""
    manifest = user_manifest(k8s, namespace)

    def done() -> dict[str, Any] | None:
        obj = get(k8s, "servingendpoint", NAME, namespace)
        return settled(obj) if obj else None

    before = eventually(f"{NAME} reconciled", done, 30.0)
    assert before is not None
    diff = k8s.kubectl("diff", "--server-side", "-f", str(manifest), check=False)
    assert diff.returncode == 0, f"kubectl diff found drift:\n{diff.stdout}{diff.stderr}"
    k8s.kubectl("apply", "--server-side", "-f", str(manifest))
    after = get(k8s, "servingendpoint", NAME, namespace, managed=True)
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"], "re-apply wrote"
    assert after["metadata"]["generation"] == before["metadata"]["generation"]

    user_doc = yaml.safe_load(manifest.read_text())
    assert _contains(after["spec"], user_doc["spec"]), "the live spec differs from the user's"
    user_meta_keys = {
        f"f:{section}": set(user_doc["metadata"].get(section) or {}) for section in ("labels", "annotations")
    }
    managers = {e["manager"] for e in after["metadata"]["managedFields"]}
    assert len(managers) > 1, f"only {managers}: the operator's writes should show up too"
    for entry in after["metadata"]["managedFields"]:
        if entry["manager"] == "kubectl":  # the user's own applies
            continue
        fields = entry.get("fieldsV1", {})
        assert "f:spec" not in fields, f"{entry['manager']} owns spec fields: {fields['f:spec']}"
        meta = fields.get("f:metadata", {})
        for section, user_keys in user_meta_keys.items():
            owned = {k.removeprefix("f:") for k in meta.get(section, {})}
            assert not owned & user_keys, f"{entry['manager']} owns user {section}: {owned & user_keys}"


def _contains(live: Any, wanted: Any) -> bool:
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(k in live and _contains(live[k], v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return isinstance(live, list) and len(live) == len(wanted) and all(map(_contains, live, wanted))
    return bool(live == wanted)


def assert_kubectl_experience(k8s: DevCluster, namespace: str) -> None:
    """`kubectl get` (and the short name) shows the printer columns, `explain` the field descriptions, and
    `describe` the conditions."""
    for resource in ("servingendpoints", "se"):
        table = k8s.kubectl("get", resource, "-n", namespace).stdout.splitlines()
        header = table[0].split()
        assert header[:6] == ["NAME", "READY", "TASK", "ENTITIES", "REASON", "AGE"], header  # the URL: -o wide
        row = table[1].split()
        assert row[:5] == [NAME, "False", "llm/v1/chat", row[3], "Progressing"], row  # no Deployment controller
        assert f".{namespace}.svc" not in table[1]
    wide = k8s.kubectl("get", "se", "-n", namespace, "-o", "wide").stdout
    assert "URL" in wide.splitlines()[0].split()
    assert f".{namespace}.svc" in wide
    every = k8s.kubectl("get", "all", "-n", namespace, "-o", "name").stdout
    assert "servingendpoint" not in every  # not in category all
    assert NAME in k8s.kubectl("get", "modelgate", "-n", namespace, "-o", "name").stdout
    explained = k8s.kubectl("explain", "servingendpoint.spec.servedEntities").stdout
    assert "DESCRIPTION" in explained
    assert "externalModel" in explained
    described = k8s.kubectl("describe", "servingendpoint", NAME, "-n", namespace).stdout
    for text in ("Conditions", "Ready", "SecretsResolved", "Observed Generation"):
        assert text in described, text
