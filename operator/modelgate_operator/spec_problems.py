"""Checks only the operator can make: the schema (and its CEL rules) accepted the spec, but it cannot work.

Each problem becomes part of ``ConfigValid=False`` (reason ``InvalidConfig``) with a message that says what to
change. Nothing here looks at a credential's value.

The rules are not written here: which provider (and Amazon Bedrock model family) serves which task, which
providers are retired and why, and why ``ucServiceCredentialName`` cannot work all come from the shared
contract :mod:`modelgate_proxy.spec.capabilities`, whose table the proxy's adapters take their ``tasks`` from.
So the operator and the proxy cannot disagree, and judging a spec loads nothing of the proxy's runtime.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from modelgate_proxy.spec import ServingEndpointSpec
from modelgate_proxy.spec.capabilities import (
    RETIRED_PROVIDERS,
    bedrock_config_problem,
    judged_guardrails,
    servable_tasks,
    unsupported_guardrails,
)

from .conditions import Check
from .render_scaling import per_replica_note


def config_check(
    spec: ServingEndpointSpec, replicas: int, shared_counters: bool, more_problems: Sequence[str] = (),
    judge_problem: str | None = None, default_judge: bool = False,
) -> Check | None:
    """``ConfigValid`` for a spec the schema accepted: ``False`` with the problems (the spec's, then
    ``more_problems``, e.g. of its authentication); ``True`` with a warning (guardrails not enforced: no judge
    named, neither by the spec nor by the operator (``default_judge``), or the judge cannot be used
    (``judge_problem``); rate limits per replica); ``None`` when all is well."""
    issues = problems(spec) + list(more_problems)
    if issues:
        return Check("False", "InvalidConfig", "; ".join(issues))
    if judge_problem is not None and (judged := judged_guardrails(spec)):
        return Check("True", "GuardrailsNotEnforced", f"the configuration is valid, but {judge_problem}, so these "
                     "guardrails are NOT enforced, and requests follow the judge's failurePolicy (FAIL_CLOSED unless "
                     "set: refused with 503): " + ", ".join(judged))
    if not default_judge and (unenforced := unsupported_guardrails(spec)):
        return Check("True", "GuardrailsNotEnforced", "the configuration is valid, but these guardrails need a judge "
                     "model and none is named (aiGateway.guardrails.judge): they are NOT enforced, and requests "
                     "follow the judge's failurePolicy (FAIL_CLOSED unless set: refused with 503): "
                     + ", ".join(unenforced))
    if (note := per_replica_note(spec, replicas, shared_counters)) is not None:
        return Check("True", "LimitsPerReplica", "the configuration is valid, but " + note)
    return None


def provider_tasks(provider: str) -> frozenset[str]:
    """The tasks ``provider`` serves (empty when there is none or it is retired)."""
    return frozenset(servable_tasks(provider))


def problems(spec: ServingEndpointSpec) -> list[str]:
    """Human-readable problems, one per served entity and issue; empty when the config can work."""
    out: list[str] = []
    for entity in spec.served_entities:
        model = entity.external_model
        who = f"served entity {entity.effective_name}"
        if (retired := RETIRED_PROVIDERS.get(model.provider)) is not None:
            out.append(f"{who}: {retired}")
            continue
        tasks = servable_tasks(model.provider)
        family = ""
        if model.provider == "amazon-bedrock" and model.amazon_bedrock_config is not None:
            bedrock = model.amazon_bedrock_config
            tasks = servable_tasks(model.provider, bedrock.bedrock_provider)
            family = f" ({bedrock.bedrock_provider} models)"
            if (problem := bedrock_config_problem(bedrock)) is not None:
                out.append(f"{who}: {problem}")
        if model.task not in tasks:
            offered = ", ".join(sorted(tasks)) or "none"
            out.append(f"{who}: provider {model.provider}{family} cannot serve task {model.task} (it offers: {offered})")
    return out


def validation_message(exc: ValidationError) -> str:
    """The locations and messages of a rejected spec (Pydantic carries the offending input only with
    include_input: it is left out)."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)[:2000]
