"""Secret references follow RBAC, through the real admission chain: the ValidatingAdmissionPolicy shipped in
deploy/install.yaml (the chart's, rendered) lets a user create or update a ServingEndpoint only if that user may
``get`` every Secret it references. Users are impersonated (``kubectl --as``), so the API server's authorizer
answers for them exactly as it would for a real client of theirs.

The binding is narrowed to this test's namespace (the session cluster is shared), and removed afterwards. Last, the
fallback for clusters without admission policies: the operator's ``--require-secret-label``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube.resources.apps_v1 import Deployment

from modelgate_dev.devcluster import DevCluster
from modelgate_operator import admissionpolicy
from modelgate_operator.secretcache import REFERENCEABLE_LABEL

from .harness import (
    REPO,
    OperatorProcess,
    admin_client,
    assert_no_leak,
    condition,
    endpoint,
    install_rbac,
    put_secret,
    settled,
    wait_for,
)
from .samples import endpoint as manifest
from .samples import two_entities

INSTALL = REPO / "deploy" / "install.yaml"
USER = "alice"


def _shipped(kind: str) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(INSTALL.read_text()) if d and d.get("kind") == kind]
    assert len(docs) == 1, f"deploy/install.yaml should hold one {kind}"
    return dict(docs[0])


@pytest.fixture
def policy(k8s: DevCluster, namespace: str) -> Iterator[str]:
    policy = _shipped("ValidatingAdmissionPolicy")
    binding = _shipped("ValidatingAdmissionPolicyBinding")
    assert binding["spec"]["policyName"] == policy["metadata"]["name"] == admissionpolicy.POLICY_NAME
    # under names of this test's own (the install-manifest test applies the shipped ones to the same cluster)
    policy["metadata"] = {"name": f"test-{namespace}"}
    binding["metadata"] = {"name": f"test-{namespace}"}
    binding["spec"]["policyName"] = f"test-{namespace}"
    binding["spec"]["matchResources"] = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
    k8s.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(policy))
    k8s.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(binding))
    yield namespace
    k8s.kubectl("delete", "validatingadmissionpolicybinding", f"test-{namespace}", "--ignore-not-found")
    k8s.kubectl("delete", "validatingadmissionpolicy", f"test-{namespace}", "--ignore-not-found")


def _spec(ref: str) -> dict[str, Any]:
    """two_entities with ``ref`` in the custom provider's bearer token (the URL being the author's choice)."""
    return two_entities(ref=ref)


def _create(k8s: DevCluster, namespace: str, name: str, spec: dict[str, Any], *extra: str) -> Any:
    body = yaml.safe_dump(manifest(name, namespace, spec))
    return k8s.kubectl("create", "-f", "-", f"--as={USER}", *extra, input=body, check=False)


def test_a_user_may_reference_only_secrets_that_user_may_get(k8s: DevCluster, policy: str) -> None:
    namespace = policy
    k8s.kubectl("create", "secret", "generic", "db-password", "-n", namespace, "--from-literal=password=hunter2")
    k8s.kubectl("create", "secret", "generic", "openai-creds", "-n", namespace, "--from-literal=api-key=sk-x")
    k8s.kubectl("create", "role", "endpoints", "-n", namespace, "--verb=get,list,create,update,patch",
                "--resource=servingendpoints.serving.modelgate.io")  # fmt: skip
    k8s.kubectl("create", "rolebinding", "endpoints", "-n", namespace, "--role=endpoints", f"--user={USER}")
    # alice may read openai-creds (by name), not db-password
    k8s.kubectl("create", "role", "openai-creds", "-n", namespace, "--verb=get", "--resource=secrets",
                "--resource-name=openai-creds")  # fmt: skip
    k8s.kubectl("create", "rolebinding", "openai-creds", "-n", namespace, "--role=openai-creds", f"--user={USER}")

    # the policy is in force once the API server has loaded it (a dry run goes through the same admission)
    def denied() -> str:
        res = _create(k8s, namespace, "probe", _spec("{{secrets/db-password/password}}"), "--dry-run=server")
        return res.stderr if res.returncode != 0 else ""

    message = wait_for("the policy to deny", denied, timeout=30, interval=0.5)
    assert f"ValidatingAdmissionPolicy 'test-{namespace}'" in message
    assert f"user {USER} may not get all of the Secrets this ServingEndpoint references (db-password)" in message
    assert_no_leak("denial", ["hunter2"], {"the API server's answer": message})

    # denied for real, also with the reference in whitespace form, in an update, and among allowed ones
    res = _create(k8s, namespace, "steal", _spec("{{ secrets/db-password/password }}"))
    assert res.returncode != 0
    assert "db-password" in res.stderr
    assert "servingendpoint" not in k8s.kubectl("get", "servingendpoints", "-n", namespace, "-o", "name").stdout

    # allowed: only Secrets alice may get
    res = _create(k8s, namespace, "mine", _spec("{{secrets/openai-creds/api-key}}"))
    assert res.returncode == 0, res.stderr
    patch = {"spec": _spec("{{secrets/db-password/password}}")}
    res = k8s.kubectl("patch", "servingendpoint", "mine", "-n", namespace, "--type=merge", f"--as={USER}",
                      "-p", json.dumps(patch), check=False)  # fmt: skip
    assert res.returncode != 0
    assert f"user {USER} may not get all of the Secrets" in res.stderr

    # once alice may get db-password, she may reference it
    k8s.kubectl("create", "role", "db-password", "-n", namespace, "--verb=get", "--resource=secrets",
                "--resource-name=db-password")  # fmt: skip
    k8s.kubectl("create", "rolebinding", "db-password", "-n", namespace, "--role=db-password", f"--user={USER}")
    wait_for("RBAC to allow", lambda: _create(k8s, namespace, "granted", _spec("{{secrets/db-password/password}}"))
             .returncode == 0, timeout=10, interval=0.5)  # fmt: skip
    # (an admin may reference anything: the policy asks the authorizer, it grants no one anything)
    res = k8s.kubectl("create", "-f", "-", check=False,
                      input=yaml.safe_dump(manifest("admins", namespace, _spec("{{secrets/db-password/password}}"))))
    assert res.returncode == 0, res.stderr

    # the namespace's workspace gateway may not get Secrets but checks its caller's get itself: exempt here only
    gateway = f"system:serviceaccount:{namespace}:{admissionpolicy.GATEWAY_ACCOUNT}"
    impostor = f"system:serviceaccount:kube-system:{admissionpolicy.GATEWAY_ACCOUNT}"
    for who in (gateway, impostor):
        k8s.kubectl("create", "rolebinding", f"endpoints-{who.split(':')[2]}", "-n", namespace, "--role=endpoints",
                    f"--user={who}")  # fmt: skip
    for who in (gateway, impostor):
        assert k8s.kubectl("auth", "can-i", "get", "secret/db-password", "-n", namespace, f"--as={who}",
                           check=False).stdout.strip() == "no"  # fmt: skip
    body = yaml.safe_dump(manifest("via-gateway", namespace, _spec("{{secrets/db-password/password}}")))
    wait_for("the gateway's create", lambda: (r := k8s.kubectl("create", "-f", "-", f"--as={gateway}",
                   input=body, check=False)).returncode == 0 and r, timeout=10, interval=0.5)  # fmt: skip
    body = yaml.safe_dump(manifest("via-impostor", namespace, _spec("{{secrets/db-password/password}}")))
    res = k8s.kubectl("create", "-f", "-", f"--as={impostor}", input=body, check=False)
    assert res.returncode != 0
    assert f"user {impostor} may not get all of the Secrets" in res.stderr


def test_every_reference_field_of_every_provider_is_checked() -> None:
    """The policy covers each field typed SecretReference (found in the models), not a hand-kept list."""
    paths = {".".join(p) for p in admissionpolicy.reference_paths()}
    assert {"openaiConfig.openaiApiKey", "openaiConfig.microsoftEntraClientSecret", "anthropicConfig.anthropicApiKey",
            "customProviderConfig.bearerTokenAuth.token", "customProviderConfig.apiKeyAuth.value",
            "amazonBedrockConfig.awsSecretAccessKey", "googleCloudVertexAiConfig.privateKey"} <= paths  # fmt: skip
    expression = admissionpolicy.build_policy()["spec"]["variables"][0]["expression"]
    assert all(f"m.{p}" in expression for p in paths)


def test_without_admission_policies_only_labelled_secrets_are_resolved(
    k8s: DevCluster, namespace: str, tmp_path: Path
) -> None:
    """The fallback (``--require-secret-label``): a Secret without ``serving.modelgate.io/referenceable=true`` is
    not resolved, nothing is deployed; labelling it (the Secret editor's opt-in) lets the operator resolve it and apply the children."""
    client = admin_client(k8s)
    kubeconfig = install_rbac(k8s, namespace)
    try:
        put_secret(client, namespace, "openai-creds", {"api-key": "sk-ref"})
        with OperatorProcess(kubeconfig, namespace, tmp_path / "operator.log", "--require-secret-label") as op:
            k8s.kubectl("apply", "--server-side", "-f", "-",
                        input=yaml.safe_dump(manifest("labelled", namespace, two_entities())))  # fmt: skip

            def reason(want: str) -> dict[str, Any] | None:
                obj = endpoint(client, namespace, "labelled")
                ready = condition(obj, "Ready") or {}
                return obj if ready.get("reason") == want else None

            obj = wait_for("SecretNotReferenceable", lambda: reason("SecretNotReferenceable"), timeout=20)
            resolved = condition(obj, "SecretsResolved")
            assert resolved is not None
            assert resolved["status"] == "False"
            assert "{{secrets/openai-creds/api-key}}" in resolved["message"]
            assert "serving.modelgate.io/referenceable=true" in resolved["message"]
            assert not list(client.list(Deployment, namespace=namespace))

            k8s.kubectl("label", "secret", "openai-creds", "-n", namespace, f"{REFERENCEABLE_LABEL}=true")
            wait_for("resolved once labelled", lambda: settled(endpoint(client, namespace, "labelled")), timeout=20)
            assert "Traceback" not in op.logs()
    finally:
        client.close()
