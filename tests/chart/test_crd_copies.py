"""The chart's CRDs (crds/ for plain installs, templates/crds/ behind crds.install) are the one generated CRD."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelgate_dev import chartcrds, crdgen
from modelgate_operator import crd

from .helmtool import CHART, REPO_ROOT, Helm, find, parse_docs


def test_every_generated_copy_is_current() -> None:
    outputs = chartcrds.outputs()
    assert REPO_ROOT / "crds" / crd.CRD_FILENAME in outputs
    assert CHART / "crds" / crd.CRD_FILENAME in outputs
    assert CHART / "templates" / "crds" / crd.CRD_FILENAME in outputs
    stale = [str(p) for p, text in outputs.items() if not p.exists() or p.read_text() != text]
    assert stale == [], "run `make crd`"
    assert crdgen.main(["--check"]) == 0


def test_chart_crds_dir_is_byte_identical_to_the_repository_crd() -> None:
    assert (CHART / "crds" / crd.CRD_FILENAME).read_bytes() == (REPO_ROOT / "crds" / crd.CRD_FILENAME).read_bytes()


def _strip_helm_metadata(crd: dict[str, Any]) -> dict[str, Any]:
    meta = dict(crd["metadata"])
    meta.pop("annotations", None)
    meta["labels"] = {k: v for k, v in meta["labels"].items() if k != "app.kubernetes.io/managed-by"} or None
    if meta["labels"] is None:
        del meta["labels"]
    return {**crd, "metadata": meta}


def test_templated_crds_render_to_the_plain_ones(helm: Helm) -> None:
    rendered = {
        d["metadata"]["name"]: d
        for d in find(helm.template({"crds.install": True}), "CustomResourceDefinition")
    }
    plain = {
        d["metadata"]["name"]: d
        for f in sorted((CHART / "crds").glob("*.yaml"))
        for d in parse_docs(f.read_text())
    }
    assert set(rendered) == set(plain)
    for name, objects in plain.items():
        assert _strip_helm_metadata(rendered[name]) == objects, name


def test_literal_braces_in_descriptions_survive_templating(helm: Helm, tmp_path: Path) -> None:
    """Descriptions may quote `{{secrets/<name>/<key>}}`: the template escapes them so Helm prints them as-is."""
    text = "description: use {{secrets/openai/api-key}} or {{ .Values.x }} literally"
    (tmp_path / "Chart.yaml").write_text("apiVersion: v2\nname: braces\nversion: 0.0.1\n")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  " + chartcrds._escape_for_helm(text) + "\n"
    )
    out = helm.run("template", "x", str(tmp_path)).stdout
    assert parse_docs(out)[0]["data"]["description"] == text.removeprefix("description: ")
