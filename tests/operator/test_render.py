"""Rendering, secret collection/resolution, status and validation: pure functions, no cluster."""

from __future__ import annotations

import base64

import pytest
import yaml

from modelgate_operator import conditions, render, secrets, spec_problems
from modelgate_operator.render import Owner, ProxyDefaults
from modelgate_proxy.spec import SecretRef, ServingEndpointSpec

from .samples import two_entities

OWNER = Owner(name="chat", namespace="team-a", uid="0000-1111")
SENTINEL = "sk-SENTINEL-render-7f3a"
REF = SecretRef("openai-creds", "api-key")


def _spec(**kw: object) -> ServingEndpointSpec:
    return ServingEndpointSpec.model_validate(two_entities(plaintext=SENTINEL, **kw))  # type: ignore[arg-type]


def _render(spec: ServingEndpointSpec, resolved: dict[SecretRef, str] | None = None) -> render.Children:
    return render.render(OWNER, spec, resolved if resolved is not None else {REF: "b2xk"}, ProxyDefaults())


def test_collect_finds_plaintext_and_references_without_printing_values() -> None:
    fields = secrets.collect(_spec())
    assert [(f.entity, f.key_path, f.owned_key) for f in fields] == [
        ("gpt-4o", "openaiApiKey", "gpt-4o.openaiApiKey"),
        ("claude", "bearerTokenAuth.token", "claude.bearerTokenAuth.token"),
    ]
    assert fields[0].plaintext == SENTINEL
    assert fields[1].reference == REF
    assert SENTINEL not in repr(fields)
    assert secrets.referenced_secret_names(fields) == ["openai-creds"]


def test_resolve_reports_missing_secret_and_key_by_reference() -> None:
    fields = secrets.collect(_spec())
    with pytest.raises(secrets.SecretNotFound) as missing:
        secrets.resolve(fields, {"openai-creds": None})
    assert missing.value.reason == "SecretNotFound"
    assert "{{secrets/openai-creds/api-key}}" in str(missing.value)
    assert "bearerTokenAuth.token of served entity claude" in str(missing.value)
    with pytest.raises(secrets.SecretKeyNotFound) as nokey:
        secrets.resolve(fields, {"openai-creds": {"other": "eA=="}})
    assert nokey.value.reason == "SecretKeyNotFound"
    assert "other" not in str(nokey.value)
    assert secrets.resolve(fields, {"openai-creds": {"api-key": "eA=="}}) == {REF: "eA=="}


def test_config_map_holds_references_only_and_owned_secret_holds_plaintext() -> None:
    children = _render(_spec())
    text = children.config_map["data"][render.CONFIG_KEY]
    assert SENTINEL not in text
    manifest = yaml.safe_load(text)
    assert manifest["kind"] == "ServingEndpoint"
    assert manifest["metadata"] == {"name": "chat", "namespace": "team-a"}
    openai = manifest["spec"]["servedEntities"][0]["externalModel"]["openaiConfig"]
    assert openai == {
        "openaiApiKey": "{{secrets/modelgate-chat-credentials/gpt-4o.openaiApiKey}}",
        "openaiApiBase": "http://127.0.0.1:9/v1",
    }
    custom = manifest["spec"]["servedEntities"][1]["externalModel"]["customProviderConfig"]
    assert custom["bearerTokenAuth"] == {"token": "{{secrets/openai-creds/api-key}}"}
    # the proxy can load exactly what we render
    ServingEndpointSpec.model_validate(manifest["spec"])
    secret = children.secret
    assert secret["metadata"]["name"] == "modelgate-chat-credentials"
    assert base64.b64decode(secret["data"]["gpt-4o.openaiApiKey"]).decode() == SENTINEL
    assert SENTINEL not in str(children.deployment) + str(children.service)


def test_children_are_labelled_owned_and_deterministic() -> None:
    a, b = _render(_spec()), _render(_spec())
    assert a == b
    for child in a.in_apply_order():
        meta = child["metadata"]
        assert meta["namespace"] == "team-a"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "modelgate-operator"
        assert meta["labels"][render.ENDPOINT_LABEL] == "chat"
        assert meta["ownerReferences"] == [
            {"apiVersion": "serving.modelgate.io/v1alpha1", "kind": "ServingEndpoint", "name": "chat",
             "uid": "0000-1111", "controller": True, "blockOwnerDeletion": True}
        ]


def test_deployment_is_hardened_and_mounts_config_and_secrets() -> None:
    dep = _render(_spec()).deployment
    pod = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 1
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    assert c["command"] == ["modelgate", "serve", "-f", "/etc/modelgate/endpoint.yaml", "--secrets-dir",
                            "/etc/modelgate/secrets", "--host", "0.0.0.0", "--port", "8080",
                            "--auth-config", "/etc/modelgate/auth.yaml"]  # bearer by default (test_render_auth.py)
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert set(mounts) == {"/etc/modelgate/endpoint.yaml", "/tmp", "/etc/modelgate/secrets/openai-creds",
                           "/etc/modelgate/secrets/modelgate-chat-credentials", "/etc/modelgate/auth.yaml",
                           "/var/run/secrets/kubernetes.io/serviceaccount"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    ref_vol = volumes[mounts["/etc/modelgate/secrets/openai-creds"]]["secret"]
    assert ref_vol["secretName"] == "openai-creds"
    assert ref_vol["items"] == [{"key": "api-key", "path": "api-key"}]
    assert c["resources"] == ProxyDefaults().resources


def test_spec_proxy_overrides_defaults() -> None:
    raw = two_entities()
    raw["proxy"] = {"replicas": 3, "resources": {"limits": {"memory": "1Gi"}}}
    dep = _render(ServingEndpointSpec.model_validate(raw)).deployment
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["template"]["spec"]["containers"][0]["resources"] == {"limits": {"memory": "1Gi"}}


def test_checksum_follows_config_and_every_secret_value() -> None:
    base = _render(_spec()).checksum
    assert _render(_spec(split=50)).checksum != base  # traffic split -> config
    assert _render(_spec(), {REF: "bmV3"}).checksum != base  # rotated referenced Secret
    assert render.render(OWNER, ServingEndpointSpec.model_validate(two_entities(plaintext="other")),
                         {REF: "b2xk"}, ProxyDefaults()).checksum != base  # new plaintext
    dep = _render(_spec()).deployment
    assert dep["spec"]["template"]["metadata"]["annotations"][render.CHECKSUM_ANNOTATION] == base


def test_long_names_stay_valid_labels() -> None:
    name = "a" * 63
    child = render.child_name(name)
    assert len(child) <= 63
    assert child.startswith("modelgate-a")
    assert child[-1].isalnum()
    assert render.child_name(name) != render.child_name("a" * 62 + "b")


# ------------------------------------------------------------------------------------------------ status


def _checks(ok: bool = True) -> dict[str, conditions.Check]:
    return {
        "config": conditions.Check("True", "ConfigValid"),
        "secrets": conditions.Check("True", "SecretsResolved") if ok else conditions.Check("False", "SecretNotFound", "x"),
        "proxy": conditions.Check("True", "MinimumReplicasAvailable"),
    }


def test_status_ready_state_entities_and_stable_transition_times() -> None:
    spec = _spec()
    first = conditions.build_status(spec=spec, previous=None, generation=3, url="http://u", now="T1", **_checks())
    assert first["observedGeneration"] == 3
    assert [c["type"] for c in first["conditions"]] == ["Ready", "ConfigValid", "SecretsResolved", "ChildrenApplied",
                                                  "ProxyAvailable", "Authenticated"]
    assert all(c["observedGeneration"] == 3 and c["lastTransitionTime"] == "T1" for c in first["conditions"])
    assert first["state"] == {"ready": "READY", "configUpdate": "NOT_UPDATING"}
    assert first["entities"] == "gpt-4o=90%,claude=10%"
    assert first["servedEntities"][1]["state"]["deployment"] == "DEPLOYMENT_READY"
    same = conditions.build_status(spec=spec, previous=first, generation=4, url="http://u", now="T2", **_checks())
    assert all(c["lastTransitionTime"] == "T1" for c in same["conditions"])
    failed = conditions.build_status(spec=spec, previous=same, generation=4, url="http://u", now="T3", **_checks(False))
    ready = failed["conditions"][0]
    assert (ready["status"], ready["reason"], ready["lastTransitionTime"]) == ("False", "SecretNotFound", "T3")
    assert failed["conditions"][1]["lastTransitionTime"] == "T1"
    assert failed["state"] == {"ready": "NOT_READY", "configUpdate": "UPDATE_FAILED"}
    assert [c["type"] for c in conditions.transitions(same, failed)] == ["Ready", "SecretsResolved"]
    assert conditions.same_status(failed, failed)
    assert not conditions.same_status(same, failed)


def test_proxy_available_follows_deployment_status() -> None:
    assert conditions.proxy_check(None).reason == "DeploymentNotCreated"
    fresh = conditions.ProxyState(exists=True, generation=1, observed_generation=0, replicas=1)
    assert (conditions.proxy_check(fresh).status, conditions.proxy_check(fresh).reason) == ("False", "Progressing")
    done = conditions.ProxyState(exists=True, generation=2, observed_generation=2, replicas=2, updated=2, available=2)
    assert conditions.proxy_check(done).status == "True"
    assert not conditions.rolling_out(done)
    zero = conditions.ProxyState(exists=True, generation=1, observed_generation=0, replicas=0)
    assert (conditions.proxy_check(zero).status, conditions.proxy_check(zero).reason) == ("False", "ScaledToZero")
    # a rollout with the old pods still serving: available, but the config update is in progress
    rolling = conditions.ProxyState(exists=True, generation=3, observed_generation=2, replicas=2, updated=2, available=2)
    check = conditions.proxy_check(rolling)
    assert (check.status, check.reason) == ("True", "RollingOut")
    assert conditions.rolling_out(rolling)
    built = _built(rolling)
    assert built["state"] == {"ready": "READY", "configUpdate": "IN_PROGRESS"}


def _built(state: conditions.ProxyState) -> conditions.Status:
    return conditions.build_status(spec=_spec(), previous=None, generation=1, url=None, now="T",
                               config=conditions.Check("True", "ok"), secrets=conditions.Check("True", "ok"),
                               proxy=conditions.proxy_check(state), rollout=conditions.rollout(state))  # fmt: skip


def _deployment(replicas: int = 1, updated: int = 1, available: int = 1, current: int | None = None,
                progressing: tuple[str, str] | None = None, generation: int = 2, observed: int = 2) -> dict[str, object]:
    st: dict[str, object] = {"observedGeneration": observed, "replicas": updated if current is None else current,
                             "updatedReplicas": updated, "availableReplicas": available}
    if progressing is not None:
        st["conditions"] = [
            {"type": "Available", "status": "True" if available else "False", "reason": "x"},
            {"type": "Progressing", "status": progressing[0], "reason": progressing[1]},
        ]
    return {"metadata": {"generation": generation}, "spec": {"replicas": replicas}, "status": st}  # fmt: skip


@pytest.mark.parametrize(
    ("deployment", "proxy", "ready", "update"),
    [
        # the controller has not observed the new template yet
        (_deployment(observed=1), ("True", "RollingOut"), "READY", "IN_PROGRESS"),
        # new pods being created / starting, old ones serving or not
        (_deployment(updated=1, available=0, progressing=("True", "ReplicaSetUpdated")),
         ("False", "Progressing"), "NOT_READY", "IN_PROGRESS"),
        (_deployment(replicas=2, updated=1, available=2, current=3, progressing=("True", "ReplicaSetUpdated")),
         ("True", "RollingOut"), "READY", "IN_PROGRESS"),
        (_deployment(updated=1, available=1, current=2), ("True", "RollingOut"), "READY", "IN_PROGRESS"),  # no conditions
        # done
        (_deployment(progressing=("True", "NewReplicaSetAvailable")),
         ("True", "MinimumReplicasAvailable"), "READY", "NOT_UPDATING"),
        (_deployment(), ("True", "MinimumReplicasAvailable"), "READY", "NOT_UPDATING"),
        # the rollout finished, then every pod failed (crash loop): not a rollout in progress
        (_deployment(available=0, progressing=("True", "NewReplicaSetAvailable")),
         ("False", "NoAvailableReplicas"), "NOT_READY", "NOT_UPDATING"),
        # the controller gave up (crash loop or unpullable image since the new template): a failed update
        (_deployment(available=0, progressing=("False", "ProgressDeadlineExceeded")),
         ("False", "ProgressDeadlineExceeded"), "NOT_READY", "UPDATE_FAILED"),
        (_deployment(replicas=2, updated=1, available=2, current=3, progressing=("False", "ProgressDeadlineExceeded")),
         ("True", "ProgressDeadlineExceeded"), "READY", "UPDATE_FAILED"),
    ],
)
def test_config_update_is_in_progress_only_during_a_rollout(
    deployment: dict[str, object], proxy: tuple[str, str], ready: str, update: str
) -> None:
    state = conditions.proxy_state_from(deployment)
    built = _built(state)
    cond = {c["type"]: c for c in built["conditions"]}["ProxyAvailable"]
    assert (cond["status"], cond["reason"]) == proxy
    assert built["state"] == {"ready": ready, "configUpdate": update}
    entity = built["servedEntities"][0]["state"]["deployment"]
    assert entity == {"READY": "DEPLOYMENT_READY"}.get(ready, "DEPLOYMENT_CREATING" if update == "IN_PROGRESS"
                                                        else "DEPLOYMENT_FAILED")  # fmt: skip


# ------------------------------------------------------------------------------------------------ validation


def _one(model: dict[str, object]) -> ServingEndpointSpec:
    return ServingEndpointSpec.model_validate({"servedEntities": [{"name": "e", "externalModel": model}]})


def test_validation_accepts_a_working_config() -> None:
    assert spec_problems.problems(_spec()) == []


@pytest.mark.parametrize(
    ("model", "needle"),
    [
        ({"name": "text-bison", "provider": "palm", "task": "llm/v1/chat",
          "palmConfig": {"palmApiKey": "{{secrets/p/k}}"}}, "PaLM API was retired"),
        ({"name": "claude", "provider": "anthropic", "task": "llm/v1/embeddings",
          "anthropicConfig": {"anthropicApiKey": "{{secrets/a/k}}"}}, "cannot serve task llm/v1/embeddings"),
        ({"name": "claude", "provider": "amazon-bedrock", "task": "llm/v1/embeddings",
          "amazonBedrockConfig": {"awsRegion": "us-east-1", "bedrockProvider": "anthropic",
                                  "instanceProfileArn": "arn:aws:iam::123456789012:role/x"}}, "anthropic models"),
        ({"name": "titan", "provider": "amazon-bedrock", "task": "llm/v1/chat",
          "amazonBedrockConfig": {"awsRegion": "us-east-1", "bedrockProvider": "amazon",
                                  "ucServiceCredentialName": "cred"}}, "ucServiceCredentialName"),
    ],
)
def test_validation_rejects_what_cannot_work(model: dict[str, object], needle: str) -> None:
    found = spec_problems.problems(_one(model))
    assert len(found) == 1
    assert needle in found[0]
    assert "served entity e" in found[0]
