"""``--proxy-telemetry`` (chart value ``proxy.telemetry``): the Delta table root, its storage-options Secret, the
spill directory, the service account and the OTEL_* settings in each rendered proxy Deployment; the command the
operator renders is one ``modelgate serve`` accepts; no credential value in the manifest."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from modelgate_operator import render
from modelgate_operator.proxy_telemetry import (
    SPILL_DIR,
    STORAGE_DIR,
    TABLES_MEMORY_FLOOR_MIB,
    parse,
    raise_memory_limit,
)
from modelgate_operator.render import Owner, ProxyDefaults
from modelgate_proxy.cli import build_parser
from modelgate_proxy.spec import SecretRef, ServingEndpointSpec

from .samples import two_entities

OWNER = Owner(name="chat", namespace="team-a", uid="0000-1111")
TELEMETRY = {
    "tables": {"root": "s3://lake-bucket/lake", "spillMiB": 256, "spillSizeLimit": "1Gi", "batchSeconds": 5,
               "storageOptionsSecret": {"name": "lake-credentials", "key": "storage-options.yaml"}},
    "tracing": {"endpoint": "http://otel-collector.observability:4318", "sampler": "parentbased_traceidratio",
                "samplerArg": "0.25", "headersSecret": {"name": "otlp-auth", "key": "headers"},
                "env": {"OTEL_BSP_MAX_QUEUE_SIZE": "4096"}},
    "serviceAccountName": "modelgate-proxy",
}


def deployment(telemetry: object) -> dict[str, object]:
    spec = ServingEndpointSpec.model_validate(two_entities(plaintext="sk-x"))  # type: ignore[arg-type]
    defaults = ProxyDefaults(telemetry=parse(json.dumps(telemetry)))
    return render.render(OWNER, spec, {SecretRef("openai-creds", "api-key"): "b2xk"}, defaults).deployment


def test_tables_tracing_and_identity_are_wired_into_the_proxy_deployment() -> None:
    d = deployment(TELEMETRY)
    pod = d["spec"]["template"]["spec"]  # type: ignore[index]
    container = pod["containers"][0]
    command = container["command"]
    args = build_parser().parse_args(command[1:])  # modelgate serve accepts every flag the operator renders
    assert args.table_root == "s3://lake-bucket/lake"
    assert args.table_spill_dir == SPILL_DIR
    assert args.table_spill_mb == 256
    assert args.table_batch_seconds == 5
    assert args.table_storage_options == f"{STORAGE_DIR}/storage-options.yaml"
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["table-spill"]["mountPath"] == SPILL_DIR
    assert volumes["table-spill"] == {"name": "table-spill", "emptyDir": {"sizeLimit": "1Gi"}}
    assert mounts["table-storage"] == {"name": "table-storage", "mountPath": STORAGE_DIR, "readOnly": True}
    assert volumes["table-storage"]["secret"] == {
        "secretName": "lake-credentials", "items": [{"key": "storage-options.yaml", "path": "storage-options.yaml"}],
        "defaultMode": 0o440}
    assert pod["serviceAccountName"] == "modelgate-proxy"
    env = {e["name"]: e for e in container["env"]}
    assert env["OTEL_TRACES_EXPORTER"]["value"] == "otlp"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://otel-collector.observability:4318"
    assert env["OTEL_SERVICE_NAME"]["value"] == "modelgate-proxy"
    assert env["OTEL_TRACES_SAMPLER"]["value"] == "parentbased_traceidratio"
    assert env["OTEL_TRACES_SAMPLER_ARG"]["value"] == "0.25"
    assert env["OTEL_BSP_MAX_QUEUE_SIZE"]["value"] == "4096"
    assert env["OTEL_EXPORTER_OTLP_HEADERS"] == {
        "name": "OTEL_EXPORTER_OTLP_HEADERS", "valueFrom": {"secretKeyRef": {"name": "otlp-auth", "key": "headers"}}}
    assert env["OTEL_RESOURCE_ATTRIBUTES"]["value"] == (
        f"k8s.namespace.name=team-a,k8s.deployment.name={d['metadata']['name']},modelgate.endpoint=chat")  # type: ignore[index]


def test_without_telemetry_the_deployment_is_unchanged() -> None:
    plain, empty = deployment({}), deployment({"tables": None})
    assert plain == empty
    container = plain["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert not any(a.startswith("--table") for a in container["command"])
    assert "env" not in container
    # the namespace's proxy ServiceAccount of the authentication wiring, not one of telemetry's
    assert plain["spec"]["template"]["spec"]["serviceAccountName"] == "modelgate-proxy"  # type: ignore[index]
    assert parse(None) is None
    assert parse("  ") is None


@pytest.mark.parametrize(("telemetry", "message"), [
    ({"tables": {}}, "root"),
    ({"tracing": {"endpoint": "http://c:4318", "env": {"AWS_SECRET_ACCESS_KEY": "x"}}}, "only OTEL_"),
    ({"tracing": {"endpoint": "http://c:4318", "env": {"OTEL_EXPORTER_OTLP_HEADERS": "a=b"}}}, "headersSecret"),
    ({"tables": {"root": "s3://b", "spillMiB": 0}}, "spillMiB"),
    ({"tracing": {"endpoint": "http://c:4318"}, "typo": 1}, "typo"),
])
def test_a_bad_value_is_refused_with_its_field(telemetry: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse(json.dumps(telemetry))


def test_the_operator_refuses_a_bad_value_at_start(capsys: pytest.CaptureFixture[str]) -> None:
    from modelgate_operator.cli import main

    assert main(["run", "-A", "--log-format", "text", "--proxy-telemetry", '{"tables": {"rot": "x"}}']) == 2
    err = capsys.readouterr().err
    assert "--proxy-telemetry is not usable" in err
    assert "rot" in err
    assert "Traceback" not in err


def _memory_limit(spec_extra: dict[str, object], telemetry: object) -> str:
    spec = ServingEndpointSpec.model_validate({**two_entities(plaintext="sk-x"), **spec_extra})  # type: ignore[dict-item]
    defaults = ProxyDefaults(telemetry=parse(json.dumps(telemetry)) if telemetry else None)
    d = render.render(OWNER, spec, {SecretRef("openai-creds", "api-key"): "b2xk"}, defaults).deployment
    return str(d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"])  # type: ignore[index]


def test_a_proxy_writing_tables_gets_the_documented_memory_floor_unless_its_spec_sets_resources() -> None:
    logging_on = {"aiGateway": {"inferenceTableConfig": {"enabled": True, "catalogName": "c", "schemaName": "s"}}}
    usage_on = {"aiGateway": {"usageTrackingConfig": {"enabled": True}}}
    floor = f"{TABLES_MEMORY_FLOOR_MIB}Mi"
    assert ProxyDefaults().resources["limits"]["memory"] == "256Mi"  # the default below the floor
    assert _memory_limit(logging_on, TELEMETRY) == floor
    assert _memory_limit(usage_on, TELEMETRY) == floor
    assert _memory_limit({}, TELEMETRY) == "256Mi"  # writes no table: unchanged
    assert _memory_limit(logging_on, None) == "256Mi"  # no table root: JSON lines, unchanged
    own = {**logging_on, "proxy": {"resources": {"limits": {"memory": "300Mi"}}}}
    assert _memory_limit(own, TELEMETRY) == "300Mi"  # the spec's own choice is kept
    container: dict[str, object] = {"resources": {"limits": {"memory": "2Gi"}}}
    raise_memory_limit(container, TABLES_MEMORY_FLOOR_MIB)
    assert container == {"resources": {"limits": {"memory": "2Gi"}}}  # above the floor: kept
    for below in ("512Mi", "500M", "268435456", "weird"):
        container = {"resources": {"limits": {"memory": below}}}
        raise_memory_limit(container, TABLES_MEMORY_FLOOR_MIB)
        assert container == {"resources": {"limits": {"memory": floor}}}, below
