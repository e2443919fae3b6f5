"""``modelgate serve``'s provider back-pressure options (docs/rate-limits.md, "Provider back-pressure"): their
arguments, their settings entries (handed to worker processes as JSON), and the
:class:`~modelgate_proxy.stages.backpressure.policy.RetryPolicy` they make."""

from __future__ import annotations

import argparse
from typing import Any

from ..stages.backpressure.policy import (
    DEFAULT_BACKOFF_BASE,
    DEFAULT_BACKOFF_MAX,
    DEFAULT_FIRST_BYTE_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_MAX_WAIT,
    RetryPolicy,
)
from .manifests import ConfigError

USAGE = """[--provider-max-attempts N] [--retry-backoff-base S] [--retry-backoff-max S]
                    [--retry-max-wait S] [--first-byte-timeout S] [--cooldowns auto|on|off] [--cooldown-max S]"""

MAX_ATTEMPTS_BOUND = 10


def add_backpressure_arguments(serve: argparse.ArgumentParser) -> None:
    group = serve.add_argument_group("Provider back-pressure", "retries, first-byte timeout and cool-downs "
                                     "(docs/rate-limits.md)")
    group.add_argument("--provider-max-attempts", type=int, default=DEFAULT_MAX_ATTEMPTS, metavar="N",
                       help="provider calls per served entity and request on 429/502/503/504 or no answer "
                            f"(default {DEFAULT_MAX_ATTEMPTS}: no retry; at most {MAX_ATTEMPTS_BOUND})")
    group.add_argument("--retry-backoff-base", type=float, default=DEFAULT_BACKOFF_BASE, metavar="S",
                       help=f"first backoff ceiling in seconds, doubled per retry, full jitter (default "
                            f"{DEFAULT_BACKOFF_BASE})")
    group.add_argument("--retry-backoff-max", type=float, default=DEFAULT_BACKOFF_MAX, metavar="S",
                       help=f"largest backoff ceiling in seconds (default {DEFAULT_BACKOFF_MAX:g})")
    group.add_argument("--retry-max-wait", type=float, default=DEFAULT_MAX_WAIT, metavar="S",
                       help="longest wait before a retry; a provider's retry-after beyond it is answered to the "
                            f"caller at once (default {DEFAULT_MAX_WAIT:g})")
    group.add_argument("--first-byte-timeout", type=float, default=DEFAULT_FIRST_BYTE_TIMEOUT, metavar="S",
                       help="with fallbacks on: seconds a stream may take to send its first byte before the next "
                            f"served entity is tried (default {DEFAULT_FIRST_BYTE_TIMEOUT:g}; 0: no limit)")
    group.add_argument("--cooldowns", choices=["auto", "on", "off"], default="auto",
                       help="skip a served entity that answered 429 with a reset time until then: auto (endpoints "
                            "with two served entities or more, the default), on (every endpoint), off")
    group.add_argument("--cooldown-max", type=float, default=60.0, metavar="S",
                       help="longest cool-down, whatever the provider's reset time (default 60)")


def backpressure_arguments(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "provider_max_attempts": args.provider_max_attempts,
        "retry_backoff_base": args.retry_backoff_base,
        "retry_backoff_max": args.retry_backoff_max,
        "retry_max_wait": args.retry_max_wait,
        "first_byte_timeout": args.first_byte_timeout,
        "cooldowns": args.cooldowns,
        "cooldown_max": args.cooldown_max,
    }


def retry_policy(settings: dict[str, Any]) -> RetryPolicy:
    """The back-pressure policy of the ``serve`` settings; raises :class:`ConfigError` when it cannot work."""
    def number(key: str, default: float) -> float:
        value = settings.get(key)
        found = default if value is None else float(value)
        if not 0 <= found <= 3600:
            raise ConfigError(f"--{key.replace('_', '-')} must be between 0 and 3600 seconds, not {found:g}")
        return found

    attempts = settings.get("provider_max_attempts")
    attempts = DEFAULT_MAX_ATTEMPTS if attempts is None else int(attempts)
    if not 1 <= attempts <= MAX_ATTEMPTS_BOUND:
        raise ConfigError(f"--provider-max-attempts must be between 1 and {MAX_ATTEMPTS_BOUND}, not {attempts}")
    mode = settings.get("cooldowns") or "auto"
    if mode not in ("auto", "on", "off"):
        raise ConfigError(f"--cooldowns is auto, on or off, not {mode!r}")
    return RetryPolicy(max_attempts=attempts, backoff_base=number("retry_backoff_base", DEFAULT_BACKOFF_BASE),
                       backoff_max=number("retry_backoff_max", DEFAULT_BACKOFF_MAX),
                       max_wait=number("retry_max_wait", DEFAULT_MAX_WAIT),
                       first_byte_timeout=number("first_byte_timeout", DEFAULT_FIRST_BYTE_TIMEOUT),
                       cooldowns=mode, cooldown_max=number("cooldown_max", 60.0))
