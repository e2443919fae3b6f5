"""The base every spec model derives from: camelCase on the wire, strict about unknown fields."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler, model_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from .rules import Rule


def to_camel(snake: str) -> str:
    """``openai_api_key`` -> ``openaiApiKey``; ``ai21labs_config`` -> ``ai21labsConfig`` (digits do not split)."""
    first, *rest = snake.split("_")
    return first + "".join(part[:1].upper() + part[1:] for part in rest)


class SpecModel(BaseModel):
    """A part of the ServingEndpoint API.

    Fields are snake_case in Python and camelCase in YAML/JSON (the Databricks serving-endpoint API's
    names, camelCased). Unknown fields are errors, so a typo never silently loses configuration. Types are
    strict (``"yes"`` is not a boolean, ``"10"`` not an integer), as the API server's schema validation is.
    Cross-field :class:`Rule` s listed in ``rules`` are checked here and exported to the CRD as CEL.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=True,
        use_attribute_docstrings=True,
    )

    rules: ClassVar[tuple[Rule, ...]] = ()

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        broken = [rule for rule in type(self).rules if not rule.check(self)]
        if broken:  # all of them, as the API server reports every failing rule
            raise ValueError("; ".join(f"{r.field_path.lstrip('.') + ': ' if r.field_path else ''}{r.message}" for r in broken))
        return self

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        if cls.rules:
            target["x-kubernetes-validations"] = [r.to_crd() for r in cls.rules]
        return schema

    def to_json_dict(self) -> dict[str, Any]:
        """The camelCase form, omitting unset optional fields (what a user would write)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
