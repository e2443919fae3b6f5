"""Guardrails (``aiGateway.guardrails``): ``invalidKeywords`` and ``pii`` on the request (``input``) and on the
answer (``output``), with the checks of :mod:`.text_guard` (PII detection: :mod:`.pii`).

- A refusal is a 400 in the caller's error shape naming the guardrail (``invalid_keywords`` or ``pii``, with
  the PII kinds found), never echoing the text; a request refused for PII is logged masked.
- ``MASK`` sends the masked request to the provider, and answers the masked response.
- Output guardrails on a stream: the provider's stream is read to its end before anything is sent (the text
  cannot be judged, or a PII value spanning two chunks masked, before it is complete), then replayed to the
  caller as one burst of the same chunks, masked. Streaming callers then wait for the whole answer.
- ``safety`` and ``validTopics`` need a classification model the proxy does not have: they are not enforced;
  :func:`modelgate_proxy.spec.capabilities.unsupported_guardrails` lists them so the operator can report it, and the proxy warns at start-up.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

from ...aggregate import StreamAggregator
from ...errors import GuardrailBlocked, PayloadTooLarge
from ...exchange import BufferedStream, Completed, Exchange, Next, Result, Streaming
from ...json_types import JSON
from ...upstream import TRANSPORT_ERRORS, stream_broken
from ...usage_tokens import request_texts
from .text_guard import Rewrite, TextGuard, Verdict, answer_content, rewrite_answer, rewrite_chunks, rewrite_request

BlockCounter = Callable[[str, str], None]
"""Called with (direction, guardrail) for every refusal (a metric)."""


class GuardrailChecks:
    """The stage (its spec model is :class:`~modelgate_proxy.spec.gateway.Guardrails`)."""

    __slots__ = ("count", "input", "output")

    def __init__(self, input: TextGuard | None, output: TextGuard | None, count: BlockCounter | None = None) -> None:
        self.input = input if input is not None and input.active else None
        self.output = output if output is not None and output.active else None
        self.count = count

    @property
    def active(self) -> bool:
        return self.input is not None or self.output is not None

    async def __call__(self, ex: Exchange, call_next: Next) -> Result:
        if self.input is not None:
            await self._check_request(ex, self.input)
        result = await call_next(ex)
        guard = self.output
        if guard is None or ex.task == "llm/v1/embeddings":
            return result
        if isinstance(result, Completed):
            result.body = await self._check_answer(ex, guard, result.body)
            return result
        if isinstance(result, Streaming):
            chunks = await _buffer(ex, result)
            return BufferedStream(result.entity, await self._check_chunks(ex, guard, chunks))
        return result

    def _refuse(self, guard: TextGuard, err: GuardrailBlocked, blocked: str) -> GuardrailBlocked:
        if self.count is not None:
            self.count(guard.direction, blocked)
        return err

    async def _check_request(self, ex: Exchange, guard: TextGuard) -> None:
        verdict, rewrite = await _review(guard, list(request_texts(ex.task, ex.payload)), "request")
        if verdict.entities:  # masked for the provider (MASK), or for the payload log (BLOCK)
            ex.payload = rewrite_request(ex.task, ex.payload, rewrite)
        if verdict.blocked is not None:
            raise self._refuse(guard, guard.refusal(verdict), verdict.blocked)

    async def _check_answer(self, ex: Exchange, guard: TextGuard, body: JSON) -> JSON:
        verdict, rewrite = await _review(guard, answer_content(body), "answer")
        if verdict.blocked is not None:
            ex.answer = body
            raise self._refuse(guard, guard.refusal(verdict), verdict.blocked)
        if verdict.masked:
            return rewrite_answer(body, rewrite)
        return body

    async def _check_chunks(self, ex: Exchange, guard: TextGuard, chunks: list[JSON]) -> list[JSON]:
        aggregate = StreamAggregator(ex.task)
        aggregate.feed(chunks)
        answer = aggregate.answer()
        verdict, rewrite = await _review(guard, answer_content(answer), "answer")
        if verdict.blocked is not None:
            ex.answer = answer
            raise self._refuse(guard, guard.refusal(verdict), verdict.blocked)
        if not verdict.masked:
            return chunks
        masked: dict[int, str] = {}
        for choice in answer.get("choices") or ():
            text = choice.get("text") if "text" in choice else (choice.get("message") or {}).get("content")
            if isinstance(text, str):
                masked[choice.get("index", 0)] = rewrite(text)
        return rewrite_chunks(chunks, masked)


SLICED_CHARS = 16 * 1024
"""Texts longer than this together are checked slice by slice, yielding to the event loop between slices, so
other requests (``/healthz`` included) are served meanwhile; shorter ones are checked in one go (~0.2 ms)."""
MAX_CHECKED_CHARS = 4 * 1024 * 1024
"""The most text one guardrail check reads (a few seconds of work at worst, all of it interleaved with other
requests); more is refused with 413."""


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


async def _buffer(ex: Exchange, result: Streaming) -> list[JSON]:
    """Read the provider's stream to its end (errors as before the first byte: an ordinary error answer)."""
    started = perf_counter()
    response, decoder = result.response, result.decoder
    chunks: list[JSON] = []
    complete = False
    try:
        while True:
            data = await response.content.readany()
            if not data:
                break
            if ex.ticket is not None:
                ex.ticket.take(len(data), "the provider's stream (buffered for the output guardrails)")
            chunks.extend(decoder.feed(data))
        chunks.extend(decoder.close())
        complete = True
    except TRANSPORT_ERRORS as exc:
        raise stream_broken(exc) from None
    finally:
        ex.upstream_seconds += perf_counter() - started
        if complete:
            response.release()
        else:
            response.close()
    return chunks
