"""The judged guardrails of one direction: ``safety`` (Llama Guard verdicts) and ``validTopics`` (on/off
topic), each asked of the judge (:mod:`.judge`) with the prompts of :mod:`.judge_prompts`.

- Input: the request's conversation is judged (safety: its last ``User`` turn in context; topics: the text of
  its last ``User`` turn). Output: the answer is judged as the ``Agent`` turn after the request.
- An ``unsafe`` or ``off_topic`` verdict refuses: :class:`~modelgate_proxy.errors.GuardrailBlocked` naming
  ``safety`` (and the category codes) or ``valid_topics``.
- No verdict (no judge, timeout, error, an answer that is not a verdict): ``FAIL_CLOSED`` refuses with
  :class:`~modelgate_proxy.errors.GuardrailUnavailable` (503); ``LOG_ONLY`` logs a warning and lets it pass.
  Either way the decision is reported (``unavailable`` or ``logged``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Literal

from ...errors import GuardrailBlocked, GuardrailUnavailable
from ...spec.gateway import GuardrailParameters
from .judge import Judge
from .judge_prompts import (
    LLAMA_GUARD_3_CATEGORIES,
    NoVerdict,
    Turn,
    category_codes,
    parse_safety,
    parse_topics,
    safety_prompt,
    topics_prompt,
)
from .text_guard import Direction

log = logging.getLogger("modelgate.proxy")

Decision = Literal["blocked", "unavailable", "logged"]
Decide = Callable[[str, Decision, tuple[str, ...]], None]
"""Called with (guardrail, decision, detail) for every decision that is not a plain pass."""


class JudgedGuard:
    """``safety`` and ``validTopics`` of one direction."""

    def __init__(self, endpoint: str, direction: Direction, params: GuardrailParameters, judge: Judge | None,
                 policy: Literal["FAIL_CLOSED", "LOG_ONLY"], categories: Sequence[str] | None) -> None:
        self.endpoint = endpoint
        self.direction = direction
        self.safety = bool(params.safety)
        self.topics = tuple(params.valid_topics or ())
        self.judge = judge if judge is not None and judge.named else None
        self.policy = policy
        self.categories = tuple(categories or LLAMA_GUARD_3_CATEGORIES)
        self.codes = category_codes(self.categories)

    @property
    def active(self) -> bool:
        return self.safety or bool(self.topics)

    async def check(self, turns: Sequence[Turn], decide: Decide) -> None:
        """Judge ``turns`` (the last one is the text checked); raises to refuse."""
        if not turns:
            return
        if self.safety:
            await self._safety(turns, decide)
        if self.topics:
            await self._topics(turns[-1].text, decide)

    async def _safety(self, turns: Sequence[Turn], decide: Decide) -> None:
        try:
            answer = await self._ask(safety_prompt(turns, self.categories))
            codes = parse_safety(answer, self.codes)
        except NoVerdict as why:
            self._no_verdict("safety", str(why), decide)
            return
        if codes:
            decide("safety", "blocked", codes)
            raise self._refusal("safety", f" (categories: {', '.join(codes)})")

    async def _topics(self, text: str, decide: Decide) -> None:
        try:
            on_topic = parse_topics(await self._ask(topics_prompt(text, self.topics)))
        except NoVerdict as why:
            self._no_verdict("valid_topics", str(why), decide)
            return
        if not on_topic:
            decide("valid_topics", "blocked", ())
            raise self._refusal("valid_topics", "")

    async def _ask(self, prompt: str) -> str:
        if self.judge is None:
            raise NoVerdict("no judge model is configured (aiGateway.guardrails.judge or --guardrail-judge-*)")
        return await self.judge.ask(prompt)

    def _refusal(self, guardrail: str, detail: str) -> GuardrailBlocked:
        what = "Request" if self.direction == "input" else "Response"
        return GuardrailBlocked(f"{what} blocked by the {self.direction} guardrail {guardrail!r}{detail}")

    def _no_verdict(self, guardrail: str, why: str, decide: Decide) -> None:
        if self.policy == "LOG_ONLY":
            log.warning("endpoint %r: the %s guardrail %r let the text pass without a verdict: %s",
                        self.endpoint, self.direction, guardrail, why)
            decide(guardrail, "logged", ())
            return
        decide(guardrail, "unavailable", ())
        raise GuardrailUnavailable(f"the {self.direction} guardrail {guardrail!r} could not be checked: {why}")
