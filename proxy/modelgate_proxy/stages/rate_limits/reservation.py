"""The tokens a request reserves on its token budgets when it is admitted: the prompt's estimated tokens
(Databricks' ``(text length + 1) / 4`` over the request's text) plus the most it may generate, ``max_tokens``
(``max_completion_tokens`` first when both are given) times ``n``, or ``--rate-limit-default-max-tokens``
(:data:`DEFAULT_MAX_TOKENS`) when the caller sets neither; embeddings generate nothing. At least 1.

The default is an estimate, not the caller's request, so it never makes a request too large on its own: it is
capped at what the tightest token limit leaves after the prompt (``cap``). A caller's own ``max_tokens`` is
never capped: a request that asks for more than a limit allows at all is refused (400) and says so.

When the answer is over the reservation is replaced by the real use (:mod:`.admission`), so the estimate only
decides admission: too high, it keeps room reserved while the answer is under way; too low (a prompt of more
tokens than its estimate, a provider ignoring ``max_tokens``), the excess is charged when the answer ends and
delays the next admissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeGuard

from ...json_types import JSON
from ...spec import Task
from ...usage_tokens import estimate, request_chars

DEFAULT_MAX_TOKENS = 1024


@dataclass(frozen=True, slots=True)
class Reservation:
    prompt: int
    output: int
    output_from: str
    """Where ``output`` came from, for messages: ``max_tokens 50``, ``the default 1024 (no max_tokens)``, ..."""

    @property
    def tokens(self) -> int:
        return max(1, self.prompt + self.output)

    def describe(self) -> str:
        return f"{self.tokens} tokens ({self.prompt} estimated prompt tokens + {self.output_from})"


def reservation(task: Task, payload: JSON, default_max_tokens: int = DEFAULT_MAX_TOKENS,
                cap: int | None = None) -> Reservation:
    prompt = estimate(request_chars(task, payload))
    if task == "llm/v1/embeddings":
        return Reservation(prompt, 0, "no output (embeddings)")
    n = payload.get("n")
    choices = n if _is_count(n) and n > 1 else 1
    for name in ("max_completion_tokens", "max_tokens"):
        value = payload.get(name)
        if _is_count(value):
            times = f" x n {choices}" if choices > 1 else ""
            return Reservation(prompt, value * choices, f"{name} {value}{times}")
    times = f" x n {choices}" if choices > 1 else ""
    output = default_max_tokens * choices
    if cap is not None and prompt + output > cap:
        output = max(0, cap - prompt)
        return Reservation(prompt, output, f"{output} of the default {default_max_tokens}{times} (capped at the "
                                           f"token limit), as the request sets no max_tokens")
    return Reservation(prompt, output, f"the default {default_max_tokens}{times}, as the request sets no max_tokens")


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
