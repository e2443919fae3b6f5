"""Cross-field rules, each written once with its CEL twin.

A :class:`Rule` pairs a Python predicate (used wherever the spec is loaded without an API server, such as the
proxy's standalone mode and the converter) with the CEL expression that the CRD carries as an
``x-kubernetes-validations`` entry, so the API server rejects the same manifests with the same message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Rule:
    """One cross-field rule of a model."""

    cel: str
    """The CEL expression; ``self`` is the object the rule is attached to."""
    message: str
    """What is wrong, said to the user; the same text in both places."""
    check: Callable[[Any], bool]
    """The Python twin of ``cel``: True when the object is valid."""
    field_path: str | None = None
    """The field the error is reported on, as a JSON path relative to the object (``.openaiApiKey``)."""
    reason: str | None = None
    """``FieldValueRequired``, ``FieldValueForbidden`` or ``FieldValueInvalid``. (Not ``FieldValueDuplicate``:
    the API server prints a duplicate as ``Duplicate value: "object"`` and drops the message.)"""

    def to_crd(self) -> dict[str, str]:
        out = {"rule": self.cel, "message": self.message}
        if self.field_path:
            out["fieldPath"] = self.field_path
        if self.reason:
            out["reason"] = self.reason
        return out


def has(obj: Any, field: str) -> bool:
    """CEL's ``has()`` for our frozen models: the field was given (is not None)."""
    return getattr(obj, field) is not None


def exactly_one(
    ref_attr: str,
    ref_alias: str,
    plain_attr: str,
    plain_alias: str,
    *,
    when: tuple[str, Callable[[Any], bool], str] | None = None,
) -> list[Rule]:
    """Rules for a secret pair: never both; and, when required, one of them.

    ``when`` = (CEL condition, its Python twin, the condition in words for the message): the pair is only
    required while the condition holds.
    """
    rules = [
        Rule(
            cel=f"!(has(self.{ref_alias}) && has(self.{plain_alias}))",
            message=f"set only one of {ref_alias} and {plain_alias}",
            check=lambda o: not (has(o, ref_attr) and has(o, plain_attr)),
            field_path=f".{plain_alias}",
            reason="FieldValueForbidden",
        )
    ]
    if when is None:
        rules.append(
            Rule(
                cel=f"has(self.{ref_alias}) || has(self.{plain_alias})",
                message=f"one of {ref_alias} or {plain_alias} is required",
                check=lambda o: has(o, ref_attr) or has(o, plain_attr),
                field_path=f".{ref_alias}",
                reason="FieldValueRequired",
            )
        )
    else:
        cond_cel, cond, cond_text = when
        rules.append(
            Rule(
                cel=f"!({cond_cel}) || has(self.{ref_alias}) || has(self.{plain_alias})",
                message=f"one of {ref_alias} or {plain_alias} is required when {cond_text}",
                check=lambda o: (not cond(o)) or has(o, ref_attr) or has(o, plain_attr),
                field_path=f".{ref_alias}",
                reason="FieldValueRequired",
            )
        )
    return rules
