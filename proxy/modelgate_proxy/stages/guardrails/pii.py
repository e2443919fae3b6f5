"""The PII detector: scans text for the kinds of :mod:`.pii_kinds` (candidate patterns, each checked by a
maintained validator), resolves overlaps, and masks each finding with a typed placeholder ``[<ENTITY>]``
(``[PHONE_NUMBER]``, ``[CREDIT_CARD]``...). Long texts are scanned slice by slice with yields to the event loop
(:func:`detect_sliced`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from operator import attrgetter

from .pii_kinds import DETECTORS as _DETECTORS
from .pii_kinds import Detector as _Detector


@dataclass(frozen=True, slots=True)
class Finding:
    start: int
    end: int
    entity: str


def placeholder(entity: str) -> str:
    """What MASK writes in place of a value of kind ``entity``."""
    return f"[{entity}]"




SLICE_CHARS = 4096
""":func:`detect_sliced` scans this many characters of text between two yields to the event loop."""
PRECHECK_CHARS = SLICE_CHARS
"""A pre-check (a plain pattern, ~0.3 ms per 10 KB) reads this many characters between two yields."""
_OVERLAP = 512
"""Characters a slice's scan reads past the slice, so a finding that starts in it is matched whole."""

_Candidate = tuple[int, Finding]


def detect(text: str) -> list[Finding]:
    """Non-overlapping findings in ``text``, in order of position."""
    detectors = _applicable(text)
    if not detectors:
        return []
    candidates: list[_Candidate] = []
    for rank, detector in detectors:
        _scan(text, rank, detector, 0, len(text), candidates)
    return _resolve(len(text), candidates)


async def detect_sliced(text: str) -> list[Finding]:
    """:func:`detect`, the same findings, with a yield to the event loop after every :data:`SLICE_CHARS` of
    text per detector, so a long text never holds the loop for more than one slice's scan (a worker thread
    would not help: the regex engine holds the GIL for a whole scan)."""
    detectors = await _applicable_sliced(text)
    candidates: list[_Candidate] = []
    for rank, detector in detectors:
        start = 0
        while start < len(text):
            stop = min(start + SLICE_CHARS, len(text))
            start = max(_scan(text, rank, detector, start, stop, candidates), stop)
            await asyncio.sleep(0)
    resolver = _Resolver(len(text))
    for begin in range(0, len(candidates), _BATCH):
        resolver.keep(candidates[begin:begin + _BATCH])
        await asyncio.sleep(0)
    return resolver.findings(candidates)


async def mask_sliced(text: str, findings: list[Finding]) -> str:
    """:func:`mask`, yielding to the event loop after every :data:`_BATCH` findings."""
    parts: list[str] = []
    last = 0
    for begin in range(0, len(findings), _BATCH):
        for f in findings[begin:begin + _BATCH]:
            parts.append(text[last:f.start])
            parts.append(placeholder(f.entity))
            last = f.end
        await asyncio.sleep(0)
    parts.append(text[last:])
    return "".join(parts)


_BATCH = 2048
"""Candidates (findings) resolved (masked) between two yields to the event loop."""


def _applicable(text: str) -> list[tuple[int, _Detector]]:
    return [(rank, d) for rank, d in enumerate(_DETECTORS) if d[3].search(text) is not None]


async def _applicable_sliced(text: str) -> list[tuple[int, _Detector]]:
    """:func:`_applicable`, the pre-checks run :data:`PRECHECK_CHARS` at a time with yields to the event loop."""
    out: list[tuple[int, _Detector]] = []
    for rank, d in enumerate(_DETECTORS):
        for start in range(0, len(text), PRECHECK_CHARS):
            found = d[3].search(text, start, min(len(text), start + PRECHECK_CHARS + _OVERLAP)) is not None
            await asyncio.sleep(0)
            if found:
                out.append((rank, d))
                break
    return out


def _scan(text: str, rank: int, detector: _Detector, start: int, stop: int, out: list[_Candidate]) -> int:
    """Append the candidates of one detector that start in ``text[start:stop]``; returns the end of the last
    match (where the next slice's scan resumes, as one scan over the whole text would)."""
    entity, pattern, valid, _needs = detector
    size = len(text)
    endpos = size if stop >= size else min(size, stop + _OVERLAP)
    resume = stop
    for match in pattern.finditer(text, start, endpos):
        begin = match.start()
        if begin >= stop:
            break
        if endpos < size and match.end() > endpos - 2:
            whole = pattern.match(text, begin)  # it reached the window's end: match it on the whole text
            if whole is None:
                continue
            match = whole
        resume = max(resume, match.end())
        value = match.group(0)
        if valid is not None and not valid(value):
            continue
        out.append((rank, Finding(begin, match.end(), entity)))
    return resume


def _resolve(size: int, candidates: list[_Candidate]) -> list[Finding]:
    """Keep non-overlapping candidates: where two overlap, the earlier kind wins. ``candidates`` come kind by kind
    in priority order, and one kind's matches never overlap each other (one regex scan), so no sort is needed."""
    resolver = _Resolver(size)
    resolver.keep(candidates)
    return resolver.findings(candidates)


class _Resolver:
    """Which characters the findings kept so far cover, in a bytearray: each candidate is checked against its
    own span only, so resolving overlaps is linear in the candidates' lengths (checking each against every kept
    finding was quadratic: 71 s for 40,000 IP addresses)."""

    __slots__ = ("covered", "taken")

    def __init__(self, size: int) -> None:
        self.covered = bytearray(size)
        self.taken: list[Finding] = []

    def keep(self, candidates: list[_Candidate]) -> None:
        covered, taken = self.covered, self.taken
        for _rank, finding in candidates:
            if covered.find(1, finding.start, finding.end) == -1:
                covered[finding.start:finding.end] = b"\x01" * (finding.end - finding.start)
                taken.append(finding)

    def findings(self, candidates: list[_Candidate]) -> list[Finding]:
        """The kept findings in order of position (several kinds: sorted)."""
        if candidates and candidates[0][0] != candidates[-1][0]:
            self.taken.sort(key=_START)
        return self.taken


_START = attrgetter("start")


def mask(text: str, findings: list[Finding]) -> str:
    if not findings:
        return text
    parts: list[str] = []
    last = 0
    for f in findings:
        parts.append(text[last:f.start])
        parts.append(placeholder(f.entity))
        last = f.end
    parts.append(text[last:])
    return "".join(parts)
