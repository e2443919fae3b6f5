"""Where every proxy Deployment sends its records and traces: the Delta table root and its object-store
credentials, the spill directory, the pod's service account (workload identity), and the ``OTEL_*`` settings.

One operator-wide setting (``--proxy-telemetry JSON``, the chart's ``proxy.telemetry`` value), validated here
(pydantic) and applied to each rendered Deployment by :func:`apply`: pure, no API calls. Credentials never pass
through it: the storage options come from a Secret of the endpoint's namespace mounted as a file, an OTLP
headers value (which may hold a token) from a Secret key as an environment variable; workload identity needs no
secret at all (IRSA, GKE and Azure workload identity follow the service account). docs/records.md, docs/tracing.md.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelgate_proxy.spec import ServingEndpointSpec

Manifest = dict[str, Any]

STORAGE_DIR = "/etc/modelgate/table-storage"
TABLES_MEMORY_FLOOR_MIB = 768
"""The memory limit a proxy writing Delta tables gets at least, unless ``spec.proxy.resources`` sets its own: the
queues and the Arrow buffers (docs/records.md: about 500 MiB with the defaults) above the proxy's own use."""
SPILL_DIR = "/var/lib/modelgate/spill"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class SecretKey(_Model):
    name: str = Field(min_length=1, max_length=253)
    key: str = Field(min_length=1, max_length=253)


class Tables(_Model):
    root: str = Field(min_length=1, description="--table-root: a directory, s3://, gs:// or abfss:// URI")
    storage_options_secret: SecretKey | None = Field(
        None, alias="storageOptionsSecret",
        description="a Secret (in each endpoint's namespace) whose key holds the delta-rs storage options (JSON/YAML)")
    spill_mib: int = Field(1024, alias="spillMiB", ge=1, description="--table-spill-mb (per table)")
    spill_size_limit: str = Field("2Gi", alias="spillSizeLimit", description="the spill emptyDir's sizeLimit")
    batch_seconds: float | None = Field(None, alias="batchSeconds", gt=0)
    batch_rows: int | None = Field(None, alias="batchRows", ge=1)


class Tracing(_Model):
    endpoint: str = Field(min_length=1, description="OTEL_EXPORTER_OTLP_ENDPOINT (OTLP/HTTP)")
    service_name: str = Field("modelgate-proxy", alias="serviceName")
    sampler: str | None = None
    sampler_arg: str | None = Field(None, alias="samplerArg")
    headers_secret: SecretKey | None = Field(
        None, alias="headersSecret", description="OTEL_EXPORTER_OTLP_HEADERS from this Secret key (e.g. a token)")
    env: dict[str, str] = Field(default_factory=dict, description="more OTEL_* variables (no credentials)")

    @field_validator("env")
    @classmethod
    def _otel_only(cls, env: dict[str, str]) -> dict[str, str]:
        bad = [k for k in env if not k.startswith("OTEL_") or k == "OTEL_EXPORTER_OTLP_HEADERS"]
        if bad:
            raise ValueError(f"only OTEL_* variables, and the headers only through headersSecret: {bad}")
        return env


class ProxyTelemetry(_Model):
    tables: Tables | None = None
    tracing: Tracing | None = None
    service_account_name: str | None = Field(
        None, alias="serviceAccountName", description="the proxy pods' service account (workload identity)")


def parse(text: str | None) -> ProxyTelemetry | None:
    """``--proxy-telemetry`` (JSON); empty: nothing to wire."""
    if not text or not text.strip():
        return None
    telemetry = ProxyTelemetry.model_validate_json(text)
    return None if telemetry == ProxyTelemetry() else telemetry


def apply(
    deployment: Manifest, telemetry: ProxyTelemetry, endpoint: str, namespace: str, *, writes_tables: bool = False,
    own_resources: bool = False,
) -> None:
    """Add the tables' flags, volumes and the tracing environment to a rendered proxy Deployment (in place).
    ``writes_tables``: the endpoint logs payloads or usage (its tables are written); ``own_resources``: its spec sets
    the container's resources (then they are kept as they are)."""
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    if telemetry.tables is not None and writes_tables and not own_resources:
        raise_memory_limit(container, TABLES_MEMORY_FLOOR_MIB)
    if telemetry.service_account_name:
        pod["serviceAccountName"] = telemetry.service_account_name
    tables = telemetry.tables
    if tables is not None:
        args = ["--table-root", tables.root, "--table-spill-dir", SPILL_DIR, "--table-spill-mb",
                str(tables.spill_mib)]
        if tables.batch_seconds is not None:
            args += ["--table-batch-seconds", str(tables.batch_seconds)]
        if tables.batch_rows is not None:
            args += ["--table-batch-rows", str(tables.batch_rows)]
        container["volumeMounts"].append({"name": "table-spill", "mountPath": SPILL_DIR})
        pod["volumes"].append({"name": "table-spill", "emptyDir": {"sizeLimit": tables.spill_size_limit}})
        secret = tables.storage_options_secret
        if secret is not None:
            path = "storage-options.json" if secret.key.endswith(".json") else "storage-options.yaml"
            args += ["--table-storage-options", f"{STORAGE_DIR}/{path}"]
            container["volumeMounts"].append({"name": "table-storage", "mountPath": STORAGE_DIR, "readOnly": True})
            pod["volumes"].append({"name": "table-storage", "secret": {
                "secretName": secret.name, "items": [{"key": secret.key, "path": path}], "defaultMode": 0o440}})
        container["command"] = [*container["command"], *args]
    tracing = telemetry.tracing
    if tracing is not None:
        env: list[Manifest] = [
            {"name": "OTEL_TRACES_EXPORTER", "value": "otlp"},
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": tracing.endpoint},
            {"name": "OTEL_SERVICE_NAME", "value": tracing.service_name},
            {"name": "OTEL_RESOURCE_ATTRIBUTES",
             "value": f"k8s.namespace.name={namespace},k8s.deployment.name={deployment['metadata']['name']},"
                      f"modelgate.endpoint={endpoint}"},
        ]
        if tracing.sampler:
            env.append({"name": "OTEL_TRACES_SAMPLER", "value": tracing.sampler})
        if tracing.sampler_arg:
            env.append({"name": "OTEL_TRACES_SAMPLER_ARG", "value": tracing.sampler_arg})
        if tracing.headers_secret is not None:
            env.append({"name": "OTEL_EXPORTER_OTLP_HEADERS", "valueFrom": {"secretKeyRef": {
                "name": tracing.headers_secret.name, "key": tracing.headers_secret.key}}})
        named = {e["name"] for e in env}
        env += [{"name": k, "value": v} for k, v in sorted(tracing.env.items()) if k not in named]
        container["env"] = [*container.get("env", []), *env]


_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}


def _bytes(quantity: str | int) -> float | None:
    """A memory quantity in bytes (``512Mi``, ``1G``, ``268435456``); ``None`` for a form it does not read."""
    text = str(quantity).strip()
    for unit in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            try:
                return float(text[: -len(unit)]) * _UNITS[unit]
            except ValueError:
                return None
    try:
        return float(text)
    except ValueError:
        return None


def raise_memory_limit(container: Manifest, floor_mib: int) -> None:
    """Set the container's memory limit to at least ``floor_mib`` MiB (in place)."""
    resources = container.setdefault("resources", {})
    limits = resources.setdefault("limits", {})
    current = _bytes(limits["memory"]) if "memory" in limits else None
    if current is None or current < floor_mib * 2**20:
        limits["memory"] = f"{floor_mib}Mi"


def writes_tables(spec: ServingEndpointSpec) -> bool:
    """Whether the endpoint logs payloads or usage (so its proxy writes Delta tables when a table root is set)."""
    gateway = spec.ai_gateway
    if gateway is None:
        return False
    return any(c is not None and c.enabled for c in (gateway.inference_table_config, gateway.usage_tracking_config))
