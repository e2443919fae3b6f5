"""The text checks of one direction of ``aiGateway.guardrails`` (``input`` or ``output``): ``invalidKeywords``
(case-insensitive substring match) and ``pii`` (``BLOCK``, ``MASK`` or ``NONE``, with :mod:`.pii`).

What is checked is decided by :mod:`.inspected`; the judged guardrails (``safety``, ``validTopics``) are
:mod:`.judged`'s. A refusal names the guardrail (and the PII kinds found), never the text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from ...errors import GuardrailBlocked
from ...spec.gateway import GuardrailParameters
from . import pii
from .inspected import Rewrite

Direction = Literal["input", "output"]


@dataclass(slots=True)
class Verdict:
    """What a check found; ``blocked`` names the guardrail that refuses, ``masked`` the rewritten texts."""

    blocked: str | None = None
    entities: tuple[str, ...] = ()
    masked: bool = False


class TextGuard:
    """The compiled checks of one direction."""

    def __init__(self, direction: Direction, params: GuardrailParameters) -> None:
        self.direction = direction
        keywords = [k for k in (params.invalid_keywords or []) if k]
        self.keywords = (re.compile("|".join(re.escape(k) for k in sorted(keywords, key=len, reverse=True)),
                                    re.IGNORECASE) if keywords else None)
        self.pii = params.pii.behavior if params.pii is not None else "NONE"
        self.longest_keyword = max((len(k) for k in keywords), default=0)

    @classmethod
    def inactive(cls, direction: Direction) -> TextGuard:
        """A guard that checks nothing (a stream with judged output guardrails only)."""
        return cls(direction, GuardrailParameters())

    @property
    def active(self) -> bool:
        return self.keywords is not None or self.pii != "NONE"

    def review(self, texts: Iterable[str]) -> Verdict:
        """Check texts without changing them."""
        found: set[str] = set()
        for text in texts:
            if self.keywords is not None and self.keywords.search(text):
                return Verdict(blocked="invalid_keywords")
            if self.pii != "NONE":
                found.update(f.entity for f in pii.detect(text))
        return self._pii_verdict(found)

    def _pii_verdict(self, found: set[str]) -> Verdict:
        """The verdict on the PII entities found: none, blocked (BLOCK) or to be masked (MASK)."""
        if not found:
            return Verdict()
        blocked = self.pii == "BLOCK"
        return Verdict(blocked="pii" if blocked else None, entities=tuple(sorted(found)), masked=not blocked)

    async def review_sliced(self, texts: Iterable[str]) -> tuple[Verdict, Rewrite]:
        """:meth:`review` for long texts: PII is detected with :func:`.pii.detect_sliced` (yielding to the event
        loop as it goes), once; the returned rewrite masks with those findings rather than detecting again."""
        findings: dict[str, list[pii.Finding]] = {}
        for text in texts:
            if self.keywords is not None and self.keywords.search(text):
                return Verdict(blocked="invalid_keywords"), self.mask
            if self.pii != "NONE" and text not in findings:
                findings[text] = await pii.detect_sliced(text)
        verdict = self._pii_verdict({f.entity for items in findings.values() for f in items})

        masked = {text: await pii.mask_sliced(text, items) for text, items in findings.items() if items}

        def rewrite(text: str) -> str:
            done = masked.get(text)
            if done is not None:
                return done
            return text if text in findings else self.mask(text)

        return verdict, rewrite

    def mask(self, text: str) -> str:
        return pii.mask(text, pii.detect(text))

    def refusal(self, verdict: Verdict) -> GuardrailBlocked:
        what = "Request" if self.direction == "input" else "Response"
        detail = f" (found: {', '.join(verdict.entities)})" if verdict.entities else ""
        return GuardrailBlocked(f"{what} blocked by the {self.direction} guardrail {verdict.blocked!r}{detail}")
