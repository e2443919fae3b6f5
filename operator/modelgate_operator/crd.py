"""The ServingEndpoint CustomResourceDefinition, generated from the spec models (pure: no file is read or written).

``modelgate-operator crdgen`` prints it; the repository's copies are written and checked by the dev tool
``hack/modelgate_dev/crdgen.py`` (``make crd``; ``hack/test.sh`` checks they are fresh).

The pydantic models in ``modelgate_proxy.spec`` are the single source of truth. Their JSON schema is turned into
a structural OpenAPI v3 schema: references inlined, ``Optional`` unions flattened, pydantic-only keys dropped,
cross-field rules carried as ``x-kubernetes-validations`` (CEL).
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from modelgate_proxy import spec
from modelgate_proxy.spec.secrets import SECRET_REF_SYNTAX

CRD_FILENAME = f"{spec.GROUP}_{spec.PLURAL}.yaml"

_DROP_KEYS = {"title", "default", "additionalProperties", "x-modelgate-secret", "propertyNames"}
_STRING_CONSTRAINTS = {"pattern", "maxLength", "minLength"}
_KEEP_AS_IS = {"x-kubernetes-validations", "x-kubernetes-list-map-keys", "enum", "required"}

Schema = dict[str, Any]


def _inline(node: Any, defs: dict[str, Schema]) -> Any:
    """Replace every ``$ref`` with a copy of its definition (our models are not recursive)."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = copy.deepcopy(defs[node["$ref"].split("/")[-1]])
            rest = {k: v for k, v in node.items() if k != "$ref"}
            merged = {**_inline(target, defs), **_inline(rest, defs)}
            return merged
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def _structural(node: Schema) -> Schema:
    """Make one schema node structural: flatten ``anyOf: [X, null]``, drop pydantic-only keys."""
    node = dict(node)
    any_of = node.pop("anyOf", None)
    if any_of is not None:
        options = [o for o in any_of if o.get("type") != "null"]
        types = sorted(o.get("type", "") for o in options)
        if len(options) == 1:
            node = {**options[0], **node}
        elif types == ["integer", "string"]:
            node.setdefault("x-kubernetes-int-or-string", True)
            string_option = next(o for o in options if o.get("type") == "string")
            node = {**{k: v for k, v in string_option.items() if k in _STRING_CONSTRAINTS}, **node}
        else:
            raise ValueError(f"cannot express a union of {types} in a structural schema")
    if "const" in node:  # not part of the CRD schema language: the API server would silently drop it
        node["enum"] = [node.pop("const")]
    if node.get("x-kubernetes-int-or-string"):
        node.pop("type", None)
    extra = node.get("additionalProperties")
    out: Schema = {}
    for key, value in node.items():
        if key in _DROP_KEYS:
            continue
        if key == "properties":
            out[key] = {name: _structural(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = _structural(value)
        elif key == "description":
            out[key] = _clean_description(value)
        else:
            out[key] = value
    if isinstance(extra, dict):  # a map: dict[str, X]
        out["additionalProperties"] = _structural(extra)
        out.setdefault("type", "object")
    if "maxLength" in out and "type" not in out and not out.get("x-kubernetes-int-or-string"):
        out["type"] = "string"
    if "pattern" in out and out.get("type") == "string" and "maxLength" in out:  # (bounded: the rule's cost is too)
        out = _pattern_as_rule(out)
    elif "pattern" in out and out.get("x-kubernetes-int-or-string"):
        out = _int_or_string_pattern_as_rule(out)
    out.pop("x-modelgate-format", None)
    if node.get("x-modelgate-secret") == "reference":
        out["description"] = (out.get("description", "") + " " + REFERENCE_HELP).strip()
    return out


REFERENCE_HELP = (
    f"Syntax: `{SECRET_REF_SYNTAX}`, key `<key>` of the Secret `<secret-name>` in the endpoint's "
    "namespace, e.g. `{{secrets/openai/api-key}}`. Whoever creates or updates the endpoint must be allowed to "
    "`get` that Secret (docs/security.md)."
)
ENDPOINT_NAME_MESSAGE = "must be a DNS label: lower-case letters, digits and '-', starting and ending with a letter or digit"
PATTERN_MESSAGE = "has an invalid format: see `kubectl explain` for this field"


def _cel_string(text: str) -> str:
    """``text`` as a CEL raw string literal."""
    for quote in ("'", '"'):
        if quote not in text:
            return f"r{quote}{text}{quote}"
    raise ValueError(f"cannot quote {text!r} as a CEL raw string")


def _pattern_as_rule(node: Schema) -> Schema:
    """A ``pattern`` becomes a CEL rule: the API server's message for a failed pattern repeats the value and the raw
    regular expression; a rule's message is ours and never holds the value."""
    pattern = node.pop("pattern")
    message = node.pop("x-modelgate-format", None) or PATTERN_MESSAGE
    rule = {"rule": f"self.matches({_cel_string(pattern)})", "message": message}
    return {**node, "x-kubernetes-validations": [rule, *node.get("x-kubernetes-validations", [])]}


def _int_or_string_pattern_as_rule(node: Schema) -> Schema:
    """The same for an int-or-string (a quantity): an integer passes, a string must match."""
    pattern = node.pop("pattern")
    message = node.pop("x-modelgate-format", None) or PATTERN_MESSAGE
    rule = {"rule": f"type(self) == int || self.matches({_cel_string(pattern)})", "message": message}
    return {**node, "x-kubernetes-validations": [rule, *node.get("x-kubernetes-validations", [])]}


def _clean_description(text: str) -> str:
    return " ".join(text.replace("``", "`").split())


def openapi_schema(model: Any) -> Schema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    return _structural(_inline(raw, defs))


def build_crd() -> dict[str, Any]:
    spec_schema = openapi_schema(spec.ServingEndpointSpec)
    status_schema = openapi_schema(spec.ServingEndpointStatus)
    root: Schema = {
        "type": "object",
        "description": "A serving endpoint for external models (OpenAI, Anthropic, Bedrock, Vertex AI, ...), "
        "with traffic split and AI Gateway features, served by a modelgate proxy.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of this object."},
            "kind": {"type": "string", "description": "Kind of this object."},
            "metadata": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": spec.ENDPOINT_NAME_MAX_LENGTH},
                    # declared so that the rules see the bounded name (not an unbounded one: their cost estimate)
                    "generateName": {"type": "string", "maxLength": spec.ENDPOINT_NAME_MAX_LENGTH},
                },
            },
            "spec": spec_schema,
            "status": status_schema,
        },
        # The name's format as a rule at the root (CEL may not sit inside metadata): a `pattern` there would print
        # the raw regular expression and the value.
        "x-kubernetes-validations": [
            {
                "rule": f"self.metadata.name.matches({_cel_string(spec.ENDPOINT_NAME_PATTERN)})",
                "message": ENDPOINT_NAME_MESSAGE,
                "fieldPath": ".metadata.name",
            }
        ],
    }
    columns = [
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Task", "type": "string", "jsonPath": ".spec.servedEntities[0].externalModel.task"},
        {"name": "Entities", "type": "string", "jsonPath": ".status.entities"},
        {"name": "Reason", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].reason'},
        {"name": "URL", "type": "string", "jsonPath": ".status.endpointUrl", "priority": 1},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{spec.PLURAL}.{spec.GROUP}",
            "labels": {"app.kubernetes.io/name": "modelgate", "app.kubernetes.io/component": "crd"},
        },
        "spec": {
            "group": spec.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": spec.KIND,
                "listKind": f"{spec.KIND}List",
                "plural": spec.PLURAL,
                "singular": spec.SINGULAR,
                "shortNames": list(spec.SHORT_NAMES),
                "categories": ["modelgate"],
            },
            "versions": [
                {
                    "name": spec.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


HEADER = "# Generated by `make crd` (hack/modelgate_dev/crdgen.py) from the models in proxy/modelgate_proxy/spec.\n# Do not edit.\n"


def render() -> str:
    return HEADER + yaml.safe_dump(build_crd(), sort_keys=False, width=120, allow_unicode=True)
