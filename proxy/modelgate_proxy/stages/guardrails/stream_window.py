"""Output guardrails on a stream without buffering the answer: :class:`StreamWindow` holds back only the last
:func:`window` characters of each text being streamed (a choice's content, each tool call's arguments) and
sends the rest on, checked and masked.

The rule: after each batch of chunks, the pending (unsent) text of a slot is checked - keywords refuse, PII is
found - together with the last characters already sent before it (so a keyword or value is matched across the
cut). What is held back is the *open suffix* (:func:`open_suffix`): the last whitespace-free token and the
space-separated groups of digits or capitals before it - the only text that a value still arriving could be
part of - and at least the longest keyword less one character; never more than :func:`window` characters
(the longest PII value or keyword). The rest is released, masked; a finding that crosses the cut holds the cut
back to its start. So a value split across chunks lies wholly inside the held part until it is complete, and
ordinary prose flows a word behind the provider. The held part goes out at the end of its choice
(``finish_reason``) or of the stream, after the final check.
Non-text fields (role, tool-call ids and names, finish reasons, usage) pass through unchanged.

A refusal mid-stream raises :class:`~modelgate_proxy.errors.GuardrailBlocked`: the server ends the stream with
an error event in the caller's shape (no ``[DONE]``); nothing held back is sent. With judged output guardrails
(``safety``, ``validTopics``) the judge needs the whole answer: the window is the whole answer (everything is
held until the end, then judged, then released).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ...aggregate import StreamAggregator
from ...errors import PayloadTooLarge
from ...json_types import JSON
from . import pii
from .inspected import chunk_texts
from .limits import MAX_CHECKED_CHARS, SLICED_CHARS
from .pii_kinds import LONGEST_VALUE
from .text_guard import TextGuard, Verdict

CONTEXT_CHARS = 64
"""Characters already sent that are re-read before the pending text (look-behind context of the patterns)."""

Judged = Callable[[str], Awaitable[None]]
"""Called with the whole answer's text at the end of the stream (judged guardrails); raises to refuse."""
Decided = Callable[[Verdict], None]
"""Called with every refusal or masking verdict (metrics, the payload record); raises the refusal."""


GROUP_CHARS = 8
"""The longest token taken for a group of a number written in groups (``+44``, ``(415)``, ``WEST``, ``"4111``)."""


def open_suffix(text: str, limit: int) -> int:
    """How many characters at the end of ``text`` could still be the start of a PII value (at most ``limit``):
    the last token without whitespace (an e-mail address, a number written without spaces, a word that may
    yet become one), with the tokens of at most :data:`GROUP_CHARS` characters holding a digit or a capital
    before it that are separated by single spaces (a phone, card, IBAN or Aadhaar number written in groups,
    quoted or not). A backward walk over the held characters only."""
    tail = text[-limit:]
    start = len(tail)
    while start > 0 and not tail[start - 1].isspace():
        start -= 1
    while start >= 2 and tail[start - 1] == " " and not tail[start - 2].isspace():
        begin = start - 1
        while begin > 0 and not tail[begin - 1].isspace():
            begin -= 1
        token = tail[begin:start - 1]
        if len(token) > GROUP_CHARS or not any(ch.isdigit() or ch.isupper() for ch in token):
            break
        start = begin
    return len(tail) - start if start > 0 or len(text) <= limit else limit


def window(guard: TextGuard) -> int:
    """Characters held back per slot: the longest PII value or keyword."""
    return max(LONGEST_VALUE, guard.longest_keyword)


class _Slot:
    __slots__ = ("pending", "sent_tail")

    def __init__(self) -> None:
        self.pending = ""
        self.sent_tail = ""


class StreamWindow:
    """The :class:`~modelgate_proxy.exchange.StreamFilter` of the output guardrails."""

    def __init__(self, guard: TextGuard, decided: Decided, judged: Judged | None = None,
                 seen: StreamAggregator | None = None, held: Callable[[int], None] | None = None) -> None:
        self.guard = guard
        self.seen = seen
        """The provider's chunks as they came (for the usage of an answer refused mid-stream)."""
        self.decided = decided
        self.judged = judged
        self.hold = window(guard)
        self.slots: dict[tuple[int, int], _Slot] = {}
        self.template: JSON | None = None
        self.masked: set[str] = set()
        self.held: list[JSON] = []
        """Judged guardrails: every chunk, until the end of the stream."""
        self.held_chars = 0
        self.on_held = held
        """Called with the characters held for the judge (the request's in-flight byte budget)."""

    async def feed(self, chunks: list[JSON]) -> list[JSON]:
        if self.seen is not None:
            self.seen.feed(chunks)
        if self.judged is not None:
            self.held.extend(chunks)
            size = sum(len(t) for c in chunks for t in chunk_texts(c))
            self.held_chars += size
            if self.on_held is not None:
                self.on_held(size)
            if self.held_chars > MAX_CHECKED_CHARS:
                raise PayloadTooLarge(f"the answer has more text than the guardrails check (the limit is "
                                      f"{MAX_CHECKED_CHARS} characters)")
            return []
        return await self._pass(chunks)

    async def _pass(self, chunks: list[JSON]) -> list[JSON]:
        out: list[JSON] = []
        for chunk in chunks:
            choices = chunk.get("choices")
            if not isinstance(choices, list) or not choices:
                out.append(chunk)
                continue
            self.template = chunk
            out.append({**chunk, "choices": [await self._choice(c) for c in choices]})
        return out

    async def close(self, chunks: list[JSON]) -> list[JSON]:
        if self.seen is not None:
            self.seen.feed(chunks)
        if self.judged is not None:
            held = self.held + chunks
            self.held = []
            text = "".join(t for c in held for t in chunk_texts(c))
            out = await self._pass(held)  # keywords and PII first: nothing unmasked goes to the judge
            await self.judged(pii.mask(text, pii.detect(text)) if self.guard.pii == "MASK" else text)
        else:
            out = await self._pass(chunks)
        left = [(key, slot) for key, slot in self.slots.items() if slot.pending]
        if left and self.template is not None:
            choices = [self._release_choice(key, await self._flush(slot)) for key, slot in left]
            out.append({**{k: v for k, v in self.template.items() if k != "usage"}, "choices": choices})
        if self.masked:
            self.decided(Verdict(entities=tuple(sorted(self.masked)), masked=True))
        return out

    async def _choice(self, choice: Any) -> Any:
        if not isinstance(choice, dict):
            return choice
        index = choice.get("index", 0)
        final = choice.get("finish_reason") is not None
        choice = dict(choice)
        if isinstance(choice.get("text"), str):
            choice["text"] = await self._take((index, -1), choice["text"], final)
            return choice
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            return choice
        delta = dict(delta)
        if isinstance(delta.get("content"), str) or (final and self._has((index, -1))):
            delta["content"] = await self._take((index, -1), delta.get("content") or "", final)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            delta["tool_calls"] = [await self._call(index, c, final) for c in calls]
        if final:  # the choice ends: every tool call's held arguments go out with this chunk
            for (i, slot_id), slot in self.slots.items():
                if i == index and slot_id >= 0 and slot.pending:
                    calls = list(delta.get("tool_calls") or [])
                    calls.append({"index": slot_id, "function": {"arguments": await self._flush(slot)}})
                    delta["tool_calls"] = calls
        choice["delta"] = delta
        return choice

    async def _call(self, index: int, call: Any, final: bool) -> Any:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
            return call
        slot_id = call.get("index", 0) if isinstance(call.get("index", 0), int) else 0
        text = await self._take((index, slot_id), function["arguments"], final)
        return {**call, "function": {**function, "arguments": text}}

    def _has(self, key: tuple[int, int]) -> bool:
        slot = self.slots.get(key)
        return slot is not None and bool(slot.pending)

    async def _take(self, key: tuple[int, int], text: str, final: bool) -> str:
        """Add ``text`` to the slot; return what may be released now (checked and masked)."""
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = _Slot()
        slot.pending += text
        if final:
            return await self._flush(slot)
        held = max(open_suffix(slot.pending, self.hold), self.guard.longest_keyword - 1)
        if held >= len(slot.pending):
            if self.guard.keywords is not None or self.guard.pii == "BLOCK":
                await self._check(slot)
            return ""
        return await self._release(slot, len(slot.pending) - held)

    async def _flush(self, slot: _Slot) -> str:
        return await self._release(slot, len(slot.pending))

    async def _check(self, slot: _Slot) -> list[pii.Finding]:
        """Refuse on a keyword (raises); the PII findings of the pending text (offsets in it)."""
        guard = self.guard
        context = slot.sent_tail
        text = context + slot.pending
        if guard.keywords is not None and guard.keywords.search(text):
            self._refuse(Verdict(blocked="invalid_keywords"))
        if guard.pii == "NONE":
            return []
        found = [pii.Finding(f.start - len(context), f.end - len(context), f.entity)
                 for f in (await pii.detect_sliced(text) if len(text) > SLICED_CHARS else pii.detect(text))
                 if f.start >= len(context)]
        if found and guard.pii == "BLOCK":
            self._refuse(Verdict(blocked="pii", entities=tuple(sorted({f.entity for f in found}))))
        return found

    def _refuse(self, verdict: Verdict) -> None:
        self.decided(verdict)  # reports the refusal and raises it
        raise self.guard.refusal(verdict)

    async def _release(self, slot: _Slot, cut: int) -> str:
        findings = await self._check(slot)
        for f in findings:
            if f.start < cut < f.end:
                cut = f.start
        kept = [f for f in findings if f.end <= cut]
        released = pii.mask(slot.pending[:cut], kept)
        self.masked.update(f.entity for f in kept)
        tail = slot.pending[:cut]
        slot.pending = slot.pending[cut:]
        slot.sent_tail = (slot.sent_tail + tail)[-CONTEXT_CHARS:]
        return released

    def _release_choice(self, key: tuple[int, int], text: str) -> JSON:
        index, slot_id = key
        if self.template is not None and self.template.get("object") == "text_completion":
            return {"index": index, "text": text, "finish_reason": None}
        if slot_id < 0:
            return {"index": index, "delta": {"content": text}, "finish_reason": None}
        return {"index": index, "delta": {"tool_calls": [{"index": slot_id, "function": {"arguments": text}}]},
                "finish_reason": None}
