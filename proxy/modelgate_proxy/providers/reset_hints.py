"""When a provider says it has room again: the seconds its rate-limit headers ask a client to wait.

Read, in this order (the first usable one wins):

- ``retry-after-ms`` (OpenAI, Azure OpenAI): milliseconds.
- ``retry-after`` (RFC 9110): delay-seconds, or an HTTP-date.
- On a 429 only, the providers' reset headers; the longest of them is the time the limit that refused resets
  (the others reset sooner):

  - OpenAI ``x-ratelimit-reset-requests`` / ``x-ratelimit-reset-tokens``: a Go duration (``1s``, ``6m0s``,
    ``20ms``, ``1h2m3.5s``);
  - Anthropic ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset``: an RFC 3339 time.

A value that does not parse, lies in the past, or is further away than :data:`MAX_HINT_SECONDS` (a day) is
ignored (``None``): a provider's header never makes the proxy wait unboundedly, and the caller of
:func:`reset_seconds` bounds the wait further (``--retry-max-wait``, ``--cooldown-max``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from time import time

MAX_HINT_SECONDS = 86_400.0

_DURATION = re.compile(r"(?:(\d{1,6})h)?(?:(\d{1,6})m(?!s))?(?:(\d{1,9}(?:\.\d{1,9})?)s)?(?:(\d{1,9}(?:\.\d{1,9})?)ms)?")
_NUMBER = re.compile(r"\d{1,10}(?:\.\d{1,6})?")
_OPENAI_RESETS = ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
_ANTHROPIC_RESETS = tuple(f"anthropic-ratelimit-{kind}-reset"
                          for kind in ("requests", "tokens", "input-tokens", "output-tokens"))


def reset_seconds(status: int, headers: Mapping[str, str], now: Callable[[], float] = time) -> float | None:
    """Seconds from now until the provider has room again, per its headers; ``None`` when they say nothing
    usable. ``headers`` is looked up case-insensitively when it is a case-insensitive mapping (aiohttp's), and
    by the lower-case names otherwise."""
    ms = _get(headers, "retry-after-ms")
    if ms is not None and _NUMBER.fullmatch(ms):
        return _bounded(float(ms) / 1000)
    after = _get(headers, "retry-after")
    if after is not None:
        found = retry_after(after, now)
        if found is not None:
            return found
    if status != 429:
        return None
    resets = [go_duration(v) for name in _OPENAI_RESETS if (v := _get(headers, name)) is not None]
    resets += [rfc3339_in(v, now) for name in _ANTHROPIC_RESETS if (v := _get(headers, name)) is not None]
    usable = [r for r in resets if r is not None]
    return max(usable) if usable else None


def retry_after(value: str, now: Callable[[], float] = time) -> float | None:
    """RFC 9110 ``Retry-After``: delay-seconds or an HTTP-date (IMF-fixdate and the obsolete forms)."""
    value = value.strip()
    if _NUMBER.fullmatch(value):
        return _bounded(float(value))
    if not value.isascii() or len(value) > 64:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return _bounded(when.timestamp() - now())


def go_duration(value: str) -> float | None:
    """A Go ``time.Duration`` string as OpenAI sends it (``1s``, ``6m0s``, ``1h2m3.5s``, ``250ms``)."""
    value = value.strip()
    if not value or len(value) > 40:
        return None
    match = _DURATION.fullmatch(value)
    if match is None:
        return None
    h, m, s, ms = match.groups()
    total = int(h or 0) * 3600 + int(m or 0) * 60 + float(s or 0) + float(ms or 0) / 1000
    return _bounded(total)


def rfc3339_in(value: str, now: Callable[[], float] = time) -> float | None:
    """Seconds until an RFC 3339 time (``2026-12-02T10:00:05Z``, ``...+00:00``), as Anthropic sends it."""
    value = value.strip()
    if not value.isascii() or len(value) > 40:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return _bounded(when.timestamp() - now())


def _get(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value if isinstance(value, str) else None


def _bounded(seconds: float) -> float | None:
    return seconds if 0 <= seconds <= MAX_HINT_SECONDS else None
