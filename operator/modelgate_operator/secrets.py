"""Credential fields of a spec: find them, and resolve ``{{secrets/<name>/<key>}}`` references.

Every secret field of a provider config is a pair ``xxx`` (a reference) / ``xxxPlaintext`` (the value inline);
the spec models mark the pair with ``x-modelgate-secret`` in their JSON schema. This module walks a parsed
:class:`~modelgate_proxy.spec.ServingEndpointSpec` and lists those fields with where they sit in the manifest,
so that rendering can move plaintext into the operator-owned Secret and the operator can check references.

Errors name the reference and the field that uses it, never a value. Plaintext values are excluded from every
``repr`` here so that a stray log line cannot carry one.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from modelgate_proxy.spec import SecretRef, ServingEndpointSpec, parse_secret_ref
from modelgate_proxy.spec.provider_configs import PROVIDER_CONFIG_FIELDS

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class SecretField:
    """One credential field of one served entity."""

    entity: str
    """The served entity's effective name."""
    path: JsonPath
    """Path of the object holding the pair, from the spec root (camelCase keys, list indexes)."""
    ref_alias: str
    """The reference field's camelCase name, e.g. ``openaiApiKey``."""
    plaintext_alias: str
    """Its ``*Plaintext`` twin, e.g. ``openaiApiKeyPlaintext``."""
    key_path: str
    """Dotted path of the reference field inside the provider config, e.g. ``bearerTokenAuth.token``."""
    reference: SecretRef | None
    """The reference, when the user gave one."""
    plaintext: str | None = field(default=None, repr=False)
    """The value, when the user gave it inline (never printed)."""

    @property
    def owned_key(self) -> str:
        """The key under which the operator-owned Secret stores this field's plaintext: ``<entity>.<field>``."""
        return f"{self.entity}.{self.key_path}"

    @property
    def where(self) -> str:
        """Human description of the field, for messages: ``openaiApiKey of served entity gpt-4o``."""
        return f"{self.key_path} of served entity {self.entity}"


class SecretResolutionError(Exception):
    """A reference could not be resolved. ``reason`` is the condition reason; the message names references."""

    reason = "SecretResolutionFailed"

    def __init__(self, problems: list[tuple[SecretRef, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{ref} ({where})" for ref, where in problems))


class SecretNotFound(SecretResolutionError):
    reason = "SecretNotFound"

    def __str__(self) -> str:
        return "Secret not found for " + super().__str__()


class SecretKeyNotFound(SecretResolutionError):
    reason = "SecretKeyNotFound"

    def __str__(self) -> str:
        return "Secret has no such key for " + super().__str__()


class SecretNotReferenceable(SecretResolutionError):
    reason = "SecretNotReferenceable"

    def __str__(self) -> str:
        return (
            "the operator runs with --require-secret-label and these Secrets lack the label "
            "serving.modelgate.io/referenceable=true: " + super().__str__()
        )


def secret_kind(info: FieldInfo) -> str | None:
    """``reference`` / ``plaintext`` for a field annotated with a spec secret type, else None."""
    candidates: list[Any] = [info, *info.metadata]
    for arg in typing.get_args(info.annotation):
        candidates.extend(getattr(arg, "__metadata__", ()))
    for candidate in candidates:
        extra = getattr(candidate, "json_schema_extra", None)
        if isinstance(extra, dict) and isinstance(extra.get("x-modelgate-secret"), str):
            return str(extra["x-modelgate-secret"])
    return None


def _alias(model: type[BaseModel], attr: str) -> str:
    info = model.model_fields[attr]
    return info.alias or attr


def _walk(model: BaseModel, entity: str, path: JsonPath, prefix: str) -> Iterator[SecretField]:
    cls = type(model)
    for attr, info in cls.model_fields.items():
        value = getattr(model, attr)
        if secret_kind(info) == "reference":
            twin = f"{attr}_plaintext"
            alias = _alias(cls, attr)
            plaintext = getattr(model, twin, None) if twin in cls.model_fields else None
            if value is None and plaintext is None:
                continue
            yield SecretField(
                entity=entity,
                path=path,
                ref_alias=alias,
                plaintext_alias=_alias(cls, twin) if twin in cls.model_fields else f"{alias}Plaintext",
                key_path=f"{prefix}{alias}",
                reference=parse_secret_ref(value) if value is not None else None,
                plaintext=plaintext,
            )
        elif isinstance(value, BaseModel):
            alias = _alias(cls, attr)
            yield from _walk(value, entity, (*path, alias), f"{prefix}{alias}.")


def collect(spec: ServingEndpointSpec) -> list[SecretField]:
    """Every credential field that is set, in spec order."""
    out: list[SecretField] = []
    for index, entity in enumerate(spec.served_entities):
        model = entity.external_model
        attr, alias = PROVIDER_CONFIG_FIELDS[model.provider]
        config = getattr(model, attr)
        if config is None:
            continue
        out.extend(_walk(config, entity.effective_name, ("servedEntities", index, "externalModel", alias), ""))
    return out


def references(fields: Iterable[SecretField]) -> list[SecretRef]:
    """The distinct references, sorted."""
    return sorted({f.reference for f in fields if f.reference is not None})


def referenced_secret_names(fields: Iterable[SecretField]) -> list[str]:
    """The distinct Secret names the references point to, sorted."""
    return sorted({ref.name for ref in references(fields)})


def resolve(
    fields: Iterable[SecretField], secrets: Mapping[str, Mapping[str, str] | None]
) -> dict[SecretRef, str]:
    """Look every reference up in ``secrets`` (Secret name -> its ``data``, None when absent).

    Returns reference -> the base64 ``data`` value (never decoded: only hashed and mounted). Raises
    :class:`SecretNotFound` if any Secret is missing (listing all of them), else :class:`SecretKeyNotFound`.
    """
    missing_secret: list[tuple[SecretRef, str]] = []
    missing_key: list[tuple[SecretRef, str]] = []
    values: dict[SecretRef, str] = {}
    for f in fields:
        ref = f.reference
        if ref is None:
            continue
        data = secrets.get(ref.name)
        if data is None:
            missing_secret.append((ref, f.where))
        elif ref.key not in data:
            missing_key.append((ref, f.where))
        else:
            values[ref] = data[ref.key]
    if missing_secret:
        raise SecretNotFound(missing_secret)
    if missing_key:
        raise SecretKeyNotFound(missing_key)
    return values
