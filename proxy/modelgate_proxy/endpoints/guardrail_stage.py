"""The guardrails stage of one endpoint, from its ``aiGateway.guardrails`` and the process-wide judge
(``--guardrail-judge-*``): the text checks of each direction, the judged checks with the judge they use, and
the metric callbacks."""

from __future__ import annotations

from ..spec.gateway import GuardrailJudge, Guardrails
from ..stages.guardrails.checks import GuardrailChecks
from ..stages.guardrails.judge import Judge
from ..stages.guardrails.judged import JudgedGuard
from ..stages.guardrails.text_guard import TextGuard
from .services import GatewayServices


def judge_spec(own: GuardrailJudge | None, default: GuardrailJudge | None) -> GuardrailJudge:
    """The endpoint's judge: its own when it names a model; otherwise the process-wide one, with the
    endpoint's own policy, timeout, categories and cache time when it sets a ``judge`` block."""
    if own is not None and (own.endpoint is not None or own.url is not None):
        return own
    if default is None:
        return own if own is not None else GuardrailJudge()
    if own is None:
        return default
    return default.model_copy(update={"failure_policy": own.failure_policy, "timeout_seconds": own.timeout_seconds,
                                      "safety_categories": own.safety_categories or default.safety_categories,
                                      "cache_seconds": own.cache_seconds})


def guardrail_checks(name: str, g: Guardrails, services: GatewayServices) -> GuardrailChecks:
    metrics = services.metrics
    spec = judge_spec(g.judge, services.settings.guardrail_judge)
    judge = None
    if services.judge_context is not None and (spec.endpoint is not None or spec.url is not None):
        judge = Judge(spec, services.judge_context,
                      lambda outcome, seconds: metrics.guardrail_judged(name, outcome, seconds))

    def judged(direction: str) -> JudgedGuard | None:
        params = g.input if direction == "input" else g.output
        if params is None:
            return None
        return JudgedGuard(name, "input" if direction == "input" else "output", params, judge,
                           spec.failure_policy, spec.safety_categories)

    return GuardrailChecks(
        TextGuard("input", g.input) if g.input is not None else None,
        TextGuard("output", g.output) if g.output is not None else None,
        lambda direction, guardrail: metrics.guardrail_blocked(name, direction, guardrail),
        judged("input"), judged("output"),
        lambda direction, guardrail, decision: metrics.guardrail_decided(name, direction, guardrail, decision),
    )
