"""Credential references: ``{{secrets/<secret-name>/<key>}}`` and the ``*Plaintext`` twins.

A reference names a key of a Kubernetes Secret in the endpoint's namespace. The Secret name must be a
DNS-1123 subdomain and the key a valid Secret data key; both are checked here and by a CEL rule of the CRD.
"""

from __future__ import annotations

import re
from typing import Annotated, NamedTuple

from pydantic import AfterValidator, Field

SECRET_NAME_PATTERN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
SECRET_KEY_PATTERN = r"[-._a-zA-Z0-9]+"
SECRET_REF_PATTERN = r"^\{\{\s*secrets/(" + SECRET_NAME_PATTERN + r")/(" + SECRET_KEY_PATTERN + r")\s*\}\}$"
_SECRET_REF = re.compile(SECRET_REF_PATTERN)

# Bounds: a Secret name is at most 253 characters, a key at most 253; the reference adds its punctuation.
SECRET_REF_MAX_LENGTH = 2 * 253 + 16
PLAINTEXT_MAX_LENGTH = 16384


class SecretRef(NamedTuple):
    """A parsed ``{{secrets/<name>/<key>}}`` reference."""

    name: str
    key: str

    def __str__(self) -> str:
        return "{{secrets/" + self.name + "/" + self.key + "}}"


def parse_secret_ref(value: str) -> SecretRef:
    """Parse a reference; raises ValueError naming the expected form (never echoing a secret value)."""
    match = _SECRET_REF.match(value)
    if match is None:
        raise ValueError(
            "must be a secret reference of the form {{secrets/<secret-name>/<key>}} where <secret-name> is a "
            "Kubernetes Secret name (lowercase letters, digits, '-' and '.') and <key> a Secret key "
            "(letters, digits, '-', '_' and '.'); to give the value inline use the *Plaintext field"
        )
    name, key = match.group(1), match.group(5)
    if len(name) > 253 or len(key) > 253:
        raise ValueError("secret name and key must each be at most 253 characters")
    return SecretRef(name, key)


def is_secret_ref(value: str) -> bool:
    return _SECRET_REF.match(value) is not None


SECRET_REF_SYNTAX = "{{secrets/<secret-name>/<key>}}"
SECRET_REF_MESSAGE = (
    "must be a secret reference " + SECRET_REF_SYNTAX + " naming a Secret of the endpoint's namespace (lowercase "
    "letters, digits, '-' and '.') and one of its keys (letters, digits, '-', '_' and '.'); to give a value inline "
    "use the *Plaintext field"
)
"""The API server's message for a malformed reference: a CEL rule's, which (unlike a ``pattern``'s) never repeats
the value - a key pasted into the field stays out of the answer and the audit log."""


def _check_reference(value: str) -> str:
    parse_secret_ref(value)
    return value


SecretReference = Annotated[
    str,
    Field(
        max_length=SECRET_REF_MAX_LENGTH,
        json_schema_extra={
            "x-modelgate-secret": "reference",
            "x-kubernetes-validations": [{"rule": f"self.matches(r'{SECRET_REF_PATTERN}')", "message": SECRET_REF_MESSAGE}],
        },
    ),
    AfterValidator(_check_reference),
]
"""A ``{{secrets/<secret-name>/<key>}}`` reference to a Secret in the endpoint's namespace."""

Plaintext = Annotated[
    str,
    Field(min_length=1, max_length=PLAINTEXT_MAX_LENGTH, json_schema_extra={"x-modelgate-secret": "plaintext"}),
]
"""A credential given inline. The operator moves it into a Secret it owns; it is never logged."""
