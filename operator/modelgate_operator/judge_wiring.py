"""Read what an endpoint's guardrail judge needs from the API server: the judge endpoint (another ServingEndpoint
of the namespace) and the Secrets its credentials are in (:mod:`.render_judge` renders them).

A judge endpoint is usable when it exists, is a chat endpoint and its own reconcile of its current generation
found its config valid, resolved its Secrets and wrote its children (its owned Secret then holds its inline
credentials). Otherwise :meth:`JudgeReader.wire` says why, in words for the naming endpoint's ``ConfigValid``
(``GuardrailsNotEnforced``), and the proxy is rendered without it: requests follow the judge's failure policy.
Messages name endpoints and Secret references, never a value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from modelgate_proxy.spec import SecretRef, ServingEndpointSpec, parse_secret_ref
from modelgate_proxy.spec.gateway import GuardrailJudge

from . import render, secrets
from .kube import Kube
from .render_judge import JudgeWiring, effective_judge, global_args, global_key_field
from .secretcache import SecretCache

_NEEDED = ("ConfigValid", "SecretsResolved", "ChildrenApplied")


def judge_of(spec: Mapping[str, Any], default: GuardrailJudge | None) -> tuple[str | None, str | None]:
    """The judge endpoint a raw spec relies on, and the Secret of the operator's global judge's ``apiKey`` when it
    relies on that one (for the operator's indexes; an invalid spec relies on nothing)."""
    try:
        parsed = ServingEndpointSpec.model_validate(dict(spec))
    except ValidationError:
        return None, None
    judge = effective_judge(parsed, default)
    if judge is None:
        return None, None
    key = parse_secret_ref(judge.api_key).name if judge is default and judge.api_key is not None else None
    return judge.endpoint, key


def _unready(body: Mapping[str, Any]) -> str | None:
    status = body.get("status") or {}
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    by_type = {c.get("type"): c for c in status.get("conditions") or ()}
    for ctype in _NEEDED:
        cond = by_type.get(ctype)
        if cond is None or int(cond.get("observedGeneration") or 0) != generation:
            return "has not been reconciled yet"
        if cond.get("status") != "True":
            return f"is not usable ({ctype} is {cond.get('status')}, reason {cond.get('reason')})"
    return None


class JudgeReader:
    """Wires an endpoint's judge; ``default`` is the operator's global judge (``--guardrail-judge``)."""

    def __init__(self, kube: Kube, cache: SecretCache, default: GuardrailJudge | None) -> None:
        self.kube, self.cache, self.default = kube, cache, default

    async def wire(self, owner: render.Owner, spec: ServingEndpointSpec) -> tuple[JudgeWiring, str | None]:
        """What the proxy needs for the endpoint's judge, and why the judge cannot be used (None: it can)."""
        judge = effective_judge(spec, self.default)
        if judge is None:
            return JudgeWiring(), None
        uses_default = judge is self.default
        args = global_args(judge) if uses_default else ()
        fields = global_key_field(judge) if uses_default else []
        manifests: tuple[render.Manifest, ...] = ()
        if judge.endpoint == owner.name:  # its judge's calls would run its own guardrails: never a verdict
            return JudgeWiring(args=args), f"the endpoint names itself as its judge endpoint {owner.name!r}"
        if judge.endpoint is not None:
            loaded = await self._endpoint(owner.namespace, judge.endpoint)
            if isinstance(loaded, str):
                return JudgeWiring(args=args), loaded
            manifests, more = loaded
            fields = [*fields, *more]
        fetched = await self.cache.fetch(owner.namespace, secrets.referenced_secret_names(fields),
                                         self.kube.secret_data)  # fmt: skip
        try:
            resolved = secrets.resolve(fields, fetched)
        except secrets.SecretResolutionError as exc:
            return JudgeWiring(args=args), f"the guardrail judge's credentials cannot be read ({exc})"
        return JudgeWiring(manifests, tuple(fields), resolved, args), None

    async def _endpoint(self, namespace: str, name: str) -> tuple[tuple[render.Manifest, ...], list[secrets.SecretField]] | str:
        where = f"the judge endpoint {name!r}"
        body = await self.kube.get_endpoint(namespace, name)
        if body is None:
            return f"{where} does not exist in namespace {namespace}"
        meta = body.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return f"{where} is being deleted"
        try:
            spec = ServingEndpointSpec.model_validate(body.get("spec") or {})
        except ValidationError:
            return f"{where} is not a valid ServingEndpoint"
        if spec.task != "llm/v1/chat":
            return f"{where} is not a chat endpoint (its task is {spec.task})"
        if (why := _unready(body)) is not None:
            return f"{where} {why}"
        fields = secrets.collect(spec)
        manifest = render.proxy_manifest(render.Owner(name, namespace, str(meta.get("uid") or "")), spec, fields)
        owned = render.owned_secret_name(name)
        mounted = [
            dataclasses.replace(f, entity=f"{f.entity} of judge endpoint {name}", plaintext=None,
                                reference=SecretRef(owned, f.owned_key)) if f.plaintext is not None
            else dataclasses.replace(f, entity=f"{f.entity} of judge endpoint {name}")
            for f in fields
        ]  # fmt: skip
        return (manifest,), mounted
