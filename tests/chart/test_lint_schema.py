"""`helm lint` is clean and values.schema.json rejects typos and wrong types with a clear message."""

from __future__ import annotations

import json

import pytest

from .helmtool import CHART, KUBE_VERSION, Helm, set_args


def test_helm_lint_is_clean(helm: Helm) -> None:
    res = helm.run("lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "0 chart(s) failed" in res.stdout
    assert "[WARNING]" not in res.stdout
    assert "[ERROR]" not in res.stdout


@pytest.mark.parametrize(
    "values",
    [
        {"watch": {"scope": "cluster", "namespaces": []}, "crds": {"install": True, "keep": False}},
        {"replicaCount": 3, "metrics": {"serviceMonitor": {"enabled": True}, "podMonitor": {"enabled": True}}},
        {"watch": {"scope": "namespaced", "namespaces": ["a", "b"]}, "extraEnv": [{"name": "X", "value": "1"}]},
        {"proxy.telemetry": {"tables": {"root": "s3://b/lake", "spillMiB": 64,
                                        "storageOptionsSecret": {"name": "lake", "key": "options.yaml"}},
                             "tracing": {"endpoint": "http://collector:4318", "env": {"OTEL_BSP_MAX_QUEUE_SIZE": "9"}},
                             "serviceAccountName": "proxy"}},
    ],
)
def test_helm_lint_is_clean_with_other_values(helm: Helm, values: dict[str, object]) -> None:
    res = helm.run(
        "lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION, *set_args(values), check=False
    )
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"imag": {"tag": "x"}}, "additional properties 'imag' not allowed"),  # typo at the top level
        ({"image.tga": "x"}, "additional properties 'tga' not allowed"),  # typo one level down
        ({"securityContext.capabilities.dorp": ["ALL"]}, "additional properties 'dorp' not allowed"),
        ({"metrics.serviceMonitor.enable": True}, "additional properties 'enable' not allowed"),
        ({"replicaCount": "two"}, "/replicaCount': got string, want integer"),
        ({"crds.install": "yes"}, "/crds/install': got string, want boolean"),
        ({"watch.scope": "everywhere"}, "/watch/scope"),
        ({"watch.namespaces": "team-a"}, "/watch/namespaces': got string, want array"),
        ({"livenessPort": 70000}, "/livenessPort"),
        ({"proxy.image.pullPolicy": "Sometimes"}, "/proxy/image/pullPolicy"),
        ({"proxy.telemetry.tables.roots": "s3://b"}, "additional properties 'roots' not allowed"),
    ],
)
def test_schema_rejects_typos_and_bad_types(helm: Helm, values: dict[str, object], message: str) -> None:
    for command in ("template", "lint"):
        args = [command, *(["mg"] if command == "template" else []), str(CHART), "--kube-version", KUBE_VERSION]
        res = helm.run(*args, *set_args(values), check=False)
        assert res.returncode != 0, f"helm {command} accepted {values}"
        output = res.stdout + res.stderr
        assert "values don't meet the specifications of the schema" in output
        assert message in output, output


def test_schema_closes_every_object_level() -> None:
    """additionalProperties: false on every object with declared properties (so typos anywhere are caught)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    open_objects: list[str] = []

    def walk(node: object, path: str) -> None:
        if isinstance(node, dict):
            if "properties" in node and node.get("additionalProperties") is not False:
                open_objects.append(path or "/")
            for key, sub in node.items():
                walk(sub, f"{path}/{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{path}/{i}")

    walk(schema, "")
    assert open_objects == []
    assert schema["additionalProperties"] is False


def test_every_default_value_is_described_by_the_schema() -> None:
    import yaml

    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(vals: dict[str, object], node: dict[str, object], path: str) -> list[str]:
        props = node.get("properties", {})
        assert isinstance(props, dict)
        missing = []
        for key, val in vals.items():
            if key not in props:
                missing.append(f"{path}.{key}")
            elif isinstance(val, dict) and "properties" in props[key]:
                missing += walk(val, props[key], f"{path}.{key}")
        return missing

    assert walk(values, schema, "") == []


def test_docs_table_covers_every_chart_value() -> None:
    import yaml

    from .helmtool import REPO_ROOT

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    whole = {"resources", "proxy.resources", "gateway.resources", "rateLimitRedis.deploy.resources", "podSecurityContext",
             "securityContext"}  # documented as one row

    def keys(node: dict[str, object], prefix: str) -> list[str]:
        out = []
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and value and path not in whole:
                out += keys(value, f"{path}.")
            else:
                out.append(path)
        return out

    for doc in ("docs/install.md", "README.md"):
        text = (REPO_ROOT / doc).read_text()
        assert [k for k in keys(values, "") if f"| `{k}` |" not in text] == [], doc


def test_the_telemetry_value_reaches_the_operator_as_json_it_accepts(helm: Helm) -> None:
    import yaml

    from modelgate_operator.proxy_telemetry import parse

    telemetry = {"tables": {"root": "s3://b/lake"}, "tracing": {"endpoint": "http://collector:4318"}}
    out = helm.run("template", "mg", str(CHART), "--kube-version", KUBE_VERSION,
                   *set_args({"proxy.telemetry": telemetry})).stdout
    deployment = next(d for d in yaml.safe_load_all(out) if d and d["kind"] == "Deployment")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    parsed = parse(env["MODELGATE_PROXY_TELEMETRY"])
    assert parsed is not None
    assert parsed.tables is not None
    assert parsed.tables.root == "s3://b/lake"
    assert parsed.tracing is not None
    assert parsed.tracing.endpoint == "http://collector:4318"
    plain = helm.run("template", "mg", str(CHART), "--kube-version", KUBE_VERSION).stdout
    assert "MODELGATE_PROXY_TELEMETRY" not in plain
