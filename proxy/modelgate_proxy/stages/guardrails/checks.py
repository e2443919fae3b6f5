"""Guardrails (``aiGateway.guardrails``): ``invalidKeywords`` and ``pii`` (:mod:`.text_guard`), ``safety`` and
``validTopics`` (:mod:`.judged`) on the request (``input``) and on the answer (``output``); what is inspected:
:mod:`.inspected`.

- A refusal is a 400 in the caller's error shape naming the guardrail (``invalid_keywords``, ``pii`` with the
  PII kinds found, ``safety`` with the category codes, ``valid_topics``), never echoing the text; a request
  refused for PII is logged masked. No verdict from the judge under ``FAIL_CLOSED``: 503.
- ``MASK`` sends the masked request to the provider (and to the judge), and answers the masked response.
- Output guardrails on a stream hold back a bounded window (:mod:`.stream_window`), not the whole answer.
- Every decision (blocked, masked, unavailable, logged) is counted (``decided``), and kept on the exchange
  (:attr:`~modelgate_proxy.exchange.Exchange.guardrail_decisions`) for the payload record and a trace.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ...aggregate import StreamAggregator
from ...errors import GatewayError, PayloadTooLarge
from ...exchange import Completed, Exchange, GuardrailDecision, Next, Result, Streaming
from ...json_types import JSON
from .inspected import Rewrite, answer_texts, request_texts, request_turns, rewrite_answer, rewrite_request
from .judge_prompts import Turn
from .judged import Decision, JudgedGuard
from .limits import MAX_CHECKED_CHARS, SLICED_CHARS
from .stream_window import StreamWindow
from .text_guard import Direction, TextGuard, Verdict

BlockCounter = Callable[[str, str], None]
"""Called with (direction, guardrail) for every refusal (a metric)."""
DecisionCounter = Callable[[str, str, str], None]
"""Called with (direction, guardrail, decision) for every decision (a metric)."""


class GuardrailChecks:
    """The stage (its spec model is :class:`~modelgate_proxy.spec.gateway.Guardrails`)."""

    __slots__ = ("count", "decided", "input", "judged_input", "judged_output", "output")

    def __init__(self, input: TextGuard | None, output: TextGuard | None, count: BlockCounter | None = None,
                 judged_input: JudgedGuard | None = None, judged_output: JudgedGuard | None = None,
                 decided: DecisionCounter | None = None) -> None:
        self.input = input if input is not None and input.active else None
        self.output = output if output is not None and output.active else None
        self.judged_input = judged_input if judged_input is not None and judged_input.active else None
        self.judged_output = judged_output if judged_output is not None and judged_output.active else None
        self.count = count
        self.decided = decided

    @property
    def active(self) -> bool:
        return any(g is not None for g in (self.input, self.output, self.judged_input, self.judged_output))

    async def __call__(self, ex: Exchange, call_next: Next) -> Result:
        if self.input is not None:
            await self._check_request(ex, self.input)
        if self.judged_input is not None:
            await self._judge(ex, self.judged_input, request_turns(ex.task, ex.payload))
        result = await call_next(ex)
        if (self.output is None and self.judged_output is None) or ex.task == "llm/v1/embeddings":
            return result
        if isinstance(result, Completed):
            result.body = await self._check_answer(ex, result.body)
            return result
        if isinstance(result, Streaming):
            result.guard = self._stream_window(ex)
        return result

    def _decide(self, ex: Exchange, direction: Direction, guardrail: str, decision: Decision | str,
                detail: tuple[str, ...] = ()) -> None:
        if ex.guardrail_decisions is None:
            ex.guardrail_decisions = []
        ex.guardrail_decisions.append(GuardrailDecision(direction, guardrail, decision, detail))  # type: ignore[arg-type]
        if self.decided is not None:
            self.decided(direction, guardrail, decision)
        if decision == "blocked" and self.count is not None:
            self.count(direction, guardrail)

    def _verdict(self, ex: Exchange, guard: TextGuard, verdict: Verdict) -> None:
        """Report a text verdict; raise its refusal."""
        if verdict.blocked is not None:
            self._decide(ex, guard.direction, verdict.blocked, "blocked", verdict.entities)
            raise guard.refusal(verdict)
        if verdict.masked:
            self._decide(ex, guard.direction, "pii", "masked", verdict.entities)

    async def _judge(self, ex: Exchange, guard: JudgedGuard, turns: Sequence[Turn]) -> None:
        def decide(guardrail: str, decision: Decision, detail: tuple[str, ...]) -> None:
            self._decide(ex, guard.direction, guardrail, decision, detail)

        await guard.check(turns, decide)

    async def _check_request(self, ex: Exchange, guard: TextGuard) -> None:
        verdict, rewrite = await _review(guard, request_texts(ex.task, ex.payload), "request")
        if verdict.entities:  # masked for the provider (MASK), or for the payload log (BLOCK)
            ex.payload = rewrite_request(ex.task, ex.payload, rewrite)
        self._verdict(ex, guard, verdict)

    async def _check_answer(self, ex: Exchange, body: JSON) -> JSON:
        guard = self.output
        if guard is not None:
            verdict, rewrite = await _review(guard, answer_texts(body), "answer")
            if verdict.blocked is not None:
                ex.answer = body
            self._verdict(ex, guard, verdict)
            if verdict.masked:
                body = rewrite_answer(body, rewrite)
        if self.judged_output is not None:
            try:
                await self._judge(ex, self.judged_output, [*request_turns(ex.task, ex.payload),
                                                           Turn("Agent", "\n".join(answer_texts(body)))])
            except GatewayError:
                ex.answer = body
                raise
        return body

    def _stream_window(self, ex: Exchange) -> StreamWindow:
        guard = self.output or TextGuard.inactive("output")
        judged_guard = self.judged_output
        seen = StreamAggregator(ex.task) if ex.finishers is not None else None

        def refused() -> None:
            if seen is not None:
                ex.answer = seen.answer()

        def decided(verdict: Verdict) -> None:
            if verdict.blocked is not None:
                refused()
            self._verdict(ex, guard, verdict)

        async def judged(text: str) -> None:
            assert judged_guard is not None
            try:
                await self._judge(ex, judged_guard, [*request_turns(ex.task, ex.payload), Turn("Agent", text)])
            except GatewayError:
                refused()
                raise

        ticket = ex.ticket

        def held(size: int) -> None:
            if ticket is not None:
                ticket.take(size, "the provider's stream (held for the judged output guardrails)")

        return StreamWindow(guard, decided, judged if judged_guard is not None else None, seen, held)


async def _review(guard: TextGuard, texts: list[str], what: str) -> tuple[Verdict, Rewrite]:
    """The verdict on ``texts`` and the rewrite that masks them; :class:`PayloadTooLarge` past
    :data:`MAX_CHECKED_CHARS`."""
    size = 0
    for text in texts:
        size += len(text)
    if size > MAX_CHECKED_CHARS:
        raise PayloadTooLarge(f"the {what} has more text than the guardrails check ({size} characters; the limit "
                              f"is {MAX_CHECKED_CHARS})")
    if size > SLICED_CHARS:
        return await guard.review_sliced(texts)
    return guard.review(texts), guard.mask
