"""``modelgate convert``: convert a Databricks create-serving-endpoint body to a ServingEndpoint manifest, and
back. This module reads and writes the files (JSON or YAML); the conversion itself is
:mod:`modelgate_proxy.spec.databricks_bodies`.

    modelgate convert databricks.json > endpoint.yaml      # Databricks body (JSON or YAML) -> manifest
    modelgate convert endpoint.yaml > databricks.json      # manifest -> Databricks body
    modelgate convert --to k8s -n team-a - < body.json     # force the direction, set the namespace
    modelgate convert --name chat config.json              # a document without a name
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

from ..spec import databricks_bodies
from ..spec.databricks_bodies import (
    ConversionError,
    Direction,
    RequiredSecret,
    convert_manifest,
    databricks_to_manifest,
    detect_direction,
    kubernetes_name,
)


def secrets_instructions(secrets: list[RequiredSecret], namespace: str | None) -> str:
    """What to tell the user about the Secrets a converted manifest needs (never any value)."""
    if not secrets:
        return ""
    ns = f" -n {namespace}" if namespace else ""
    lines = ["Create these Secrets in the endpoint's namespace first (values from the Databricks secret scopes):"]
    for s in secrets:
        literals = " ".join(f"--from-literal={k}=<{s.databricks_scope}/{k}>" for k in s.keys)
        renamed = f"   # Databricks scope {s.databricks_scope!r}" if s.name != s.databricks_scope else ""
        lines.append(f"  kubectl create secret generic {s.name}{ns} {literals}{renamed}")
    return "\n".join(lines)


def add_convert_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``convert`` on the ``modelgate`` command's subparsers."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "convert",
        help="convert a Databricks create-endpoint body to a ServingEndpoint manifest, or back",
        description=(__doc__ or "") + "\n" + (databricks_bodies.__doc__ or ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", help="a JSON or YAML file, or - for stdin")
    parser.add_argument("--to", choices=["k8s", "databricks"], help="the output format (default: the other one)")
    parser.add_argument("-n", "--namespace", help="metadata.namespace of the manifest (Databricks -> k8s)")
    parser.add_argument(
        "--name",
        help="the endpoint name when the Databricks input has none (default: the file name's stem, made a "
        "Kubernetes name)",
    )
    parser.add_argument("-o", "--output", help="write here instead of stdout")
    parser.set_defaults(func=run_convert)
    return parser


def _default_name(document: Any, name: str | None, source: str) -> tuple[str | None, list[str]]:
    """The endpoint name for a document without one (``--name``, else the input file's stem by the name rule),
    and what to say about it."""
    if not isinstance(document, dict) or "name" in document:
        return name, []
    if name is not None:
        return name, [f"name: not in the input; the endpoint is named {name!r} (--name)"]
    if source == "-":
        raise ConversionError("name: the input has no endpoint name; pass --name")
    stem = Path(source).stem
    name = kubernetes_name(stem, fallback="endpoint")
    return name, [f"name: not in the input; the endpoint is named {name!r} after the file {stem!r} (--name to choose)"]


def run_convert(args: argparse.Namespace, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        text = sys.stdin.read() if args.input == "-" else Path(args.input).read_text()
        document = yaml.safe_load(text)
        direction: Direction = args.to or detect_direction(document)
        if direction == "k8s":
            name, name_note = _default_name(document, args.name, args.input)
            result = databricks_to_manifest(document, namespace=args.namespace, name=name)
            rendered = yaml.safe_dump(result.manifest, sort_keys=False, allow_unicode=True, width=120)
            warnings, note = [*name_note, *result.warnings], secrets_instructions(result.secrets, args.namespace)
        else:
            conversion = convert_manifest(document)
            rendered = json.dumps(conversion.body, indent=2, ensure_ascii=False) + "\n"
            warnings, note = conversion.warnings, ""
    except (OSError, yaml.YAMLError, ConversionError) as exc:
        print(f"modelgate convert: {exc}", file=err)
        return 1
    for warning in warnings:
        print(f"warning: {warning}", file=err)
    if note:
        print(note, file=err)
    if args.output:
        Path(args.output).write_text(rendered)
    else:
        out.write(rendered)
    return 0
