"""The bounds of a guardrail check (documented in docs/guardrails.md)."""

SLICED_CHARS = 16 * 1024
"""Texts longer than this together are checked slice by slice, yielding to the event loop between slices, so
other requests (``/healthz`` included) are served meanwhile; shorter ones are checked in one go (~0.2 ms)."""
MAX_CHECKED_CHARS = 4 * 1024 * 1024
"""The most text one guardrail check reads (a few seconds of work at worst, all of it interleaved with other
requests); more is refused with 413."""
