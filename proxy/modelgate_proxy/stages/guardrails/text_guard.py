"""The text checks of one direction of ``aiGateway.guardrails`` (``input`` or ``output``): ``invalidKeywords``
(case-insensitive substring match) and ``pii`` (``BLOCK``, ``MASK`` or ``NONE``, with :mod:`.pii`).

What is checked: chat message contents (every message; the text parts of multi-part content), completion
prompts and embeddings inputs on the way in; message contents and completion texts on the way out. Tool-call
arguments and images are not inspected. A refusal names the guardrail (and the PII kinds found), never the text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from ...errors import GuardrailBlocked
from ...json_types import JSON
from ...spec import Task
from ...spec.gateway import GuardrailParameters
from . import pii

Direction = Literal["input", "output"]
Rewrite = Callable[[str], str]


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


def rewrite_request(task: Task, payload: JSON, fn: Rewrite) -> JSON:
    """A copy of ``payload`` with every request text passed through ``fn`` (unchanged parts shared)."""
    out = dict(payload)
    if task == "llm/v1/chat":
        out["messages"] = [
            {**m, "content": _rewrite_content(m["content"], fn)} if isinstance(m, dict) and "content" in m else m
            for m in payload["messages"]
        ]
        return out
    field = "prompt" if task == "llm/v1/completions" else "input"
    value = payload.get(field)
    if isinstance(value, str):
        out[field] = fn(value)
    elif isinstance(value, list):
        out[field] = [fn(v) if isinstance(v, str) else v for v in value]
    return out


def _rewrite_content(content: Any, fn: Rewrite) -> Any:
    if isinstance(content, str):
        return fn(content)
    if isinstance(content, list):
        return [{**p, "text": fn(p["text"])} if isinstance(p, dict) and isinstance(p.get("text"), str) else p
                for p in content]
    return content


def answer_content(body: JSON) -> list[str]:
    """Texts of an answer that output guardrails inspect (message contents, completion texts)."""
    out: list[str] = []
    for choice in body.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if isinstance(choice.get("text"), str):
            out.append(choice["text"])
        message = choice.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            out.append(message["content"])
    return out


def rewrite_answer(body: JSON, fn: Rewrite) -> JSON:
    out = dict(body)
    choices = []
    for choice in body.get("choices") or ():
        if isinstance(choice, dict):
            choice = dict(choice)
            if isinstance(choice.get("text"), str):
                choice["text"] = fn(choice["text"])
            message = choice.get("message")
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                choice["message"] = {**message, "content": fn(message["content"])}
        choices.append(choice)
    out["choices"] = choices
    return out


def rewrite_chunks(chunks: list[JSON], masked: dict[int, str]) -> list[JSON]:
    """Chunks of a buffered stream whose text is replaced by the masked text of each choice: the choice's
    first text-bearing chunk carries all of it, later ones carry ``""``; everything else is kept."""
    done: set[int] = set()
    out: list[JSON] = []
    for chunk in chunks:
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            out.append(chunk)
            continue
        new_choices = []
        for choice in choices:
            if not isinstance(choice, dict):
                new_choices.append(choice)
                continue
            index = choice.get("index", 0)
            delta = choice.get("delta")
            if isinstance(choice.get("text"), str):
                choice = {**choice, "text": "" if index in done else masked.get(index, "")}
                done.add(index)
            elif isinstance(delta, dict) and isinstance(delta.get("content"), str) and (
                    delta["content"] or index not in done):
                text = "" if index in done else masked.get(index, "")
                choice = {**choice, "delta": {**delta, "content": text}}
                if text:
                    done.add(index)
            new_choices.append(choice)
        out.append({**chunk, "choices": new_choices})
    return out
