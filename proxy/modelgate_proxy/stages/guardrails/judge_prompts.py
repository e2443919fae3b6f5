"""The prompts sent to the judge model and the parsers of its answers (documented in docs/guardrails.md).

- ``safety``: the Llama Guard 3 task prompt (Meta's model card, "Prompt format"): the category list, the
  conversation (``User:`` / ``Agent:`` turns) and the instruction to assess the last turn of the checked
  role. The answer must be ``safe``, or ``unsafe`` with, on the next line, the violated codes (``S1,S3``) -
  each one of the configured categories.
- ``validTopics``: the text and the topic list; the answer must be exactly ``on_topic`` or ``off_topic``.

Anything else is not a verdict (:class:`NoVerdict`): the endpoint's failure policy decides.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

LLAMA_GUARD_3_CATEGORIES: tuple[str, ...] = (
    "S1: Violent Crimes.",
    "S2: Non-Violent Crimes.",
    "S3: Sex Crimes.",
    "S4: Child Exploitation.",
    "S5: Defamation.",
    "S6: Specialized Advice.",
    "S7: Privacy.",
    "S8: Intellectual Property.",
    "S9: Indiscriminate Weapons.",
    "S10: Hate.",
    "S11: Self-Harm.",
    "S12: Sexual Content.",
    "S13: Elections.",
    "S14: Code Interpreter Abuse.",
)
"""The default category list (Llama Guard 3's hazard taxonomy, MLCommons)."""

MAX_JUDGED_CHARS = 32 * 1024
"""The most text one judge prompt carries: longer conversations keep their last this-many characters (the
turn being assessed is last)."""

SAFETY_TEMPLATE = """Task: Check if there is unsafe content in '{role}' messages in conversations according our \
safety policy with the below categories.

<BEGIN UNSAFE CONTENT CATEGORIES>
{categories}
<END UNSAFE CONTENT CATEGORIES>

<BEGIN CONVERSATION>

{conversation}

<END CONVERSATION>

Provide your safety assessment for ONLY THE LAST {role} message in the above conversation:
 - First line must read 'safe' or 'unsafe'.
 - If unsafe, a second line must include a comma-separated list of violated categories."""

TOPICS_TEMPLATE = """Task: Decide whether the text below is about at least one of the allowed topics.

<BEGIN ALLOWED TOPICS>
{topics}
<END ALLOWED TOPICS>

<BEGIN TEXT>
{text}
<END TEXT>

Answer with exactly one word: 'on_topic' if the text is about at least one allowed topic, 'off_topic' otherwise."""


class NoVerdict(Exception):
    """The judge gave no usable verdict (the message says why, never the text judged)."""


@dataclass(frozen=True, slots=True)
class Turn:
    role: str
    """``User`` or ``Agent``."""
    text: str


def _conversation(turns: Sequence[Turn]) -> str:
    text = "\n\n".join(f"{t.role}: {t.text}" for t in turns)
    return text[-MAX_JUDGED_CHARS:]


def safety_prompt(turns: Sequence[Turn], categories: Sequence[str]) -> str:
    role = turns[-1].role if turns else "User"
    return SAFETY_TEMPLATE.format(role=role, categories="\n".join(categories), conversation=_conversation(turns))


def topics_prompt(text: str, topics: Sequence[str]) -> str:
    return TOPICS_TEMPLATE.format(topics="\n".join(f"- {t}" for t in topics), text=text[-MAX_JUDGED_CHARS:])


_CODES = re.compile(r"[A-Za-z]\d{1,3}(?:\s*,\s*[A-Za-z]\d{1,3})*")


def category_codes(categories: Sequence[str]) -> frozenset[str]:
    """The codes of ``"S1: Violent Crimes."``-style categories (the text before the colon)."""
    return frozenset(c.split(":", 1)[0].strip().upper() for c in categories)


def parse_safety(answer: str, codes: frozenset[str]) -> tuple[str, ...]:
    """``()`` for ``safe``; the violated codes for ``unsafe``; :class:`NoVerdict` otherwise."""
    lines = [line.strip() for line in answer.strip().splitlines() if line.strip()]
    if lines == ["safe"]:
        return ()
    if not lines or lines[0] != "unsafe" or len(lines) > 2:
        raise NoVerdict("the judge's answer is not a Llama Guard verdict ('safe', or 'unsafe' and the codes)")
    if len(lines) == 1:
        return ("unspecified",)
    if _CODES.fullmatch(lines[1]) is None:
        raise NoVerdict("the judge's 'unsafe' verdict has no well-formed category list")
    found = tuple(dict.fromkeys(c.strip().upper() for c in lines[1].split(",")))
    unknown = [c for c in found if c not in codes]
    if unknown:
        raise NoVerdict("the judge named a category that is not configured")
    return found


def parse_topics(answer: str) -> bool:
    """True for ``on_topic``, False for ``off_topic``; :class:`NoVerdict` for anything else."""
    word = answer.strip().strip(".").lower()
    if word == "on_topic":
        return True
    if word == "off_topic":
        return False
    raise NoVerdict("the judge's answer is neither 'on_topic' nor 'off_topic'")
