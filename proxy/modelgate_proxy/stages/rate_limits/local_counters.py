"""The in-process counter backend (the default of ``modelgate serve``): counts live in this process, so each
replica (and each ``--workers`` process) counts alone; ``--rate-limit-replicas N`` divides the limits for that
case (:mod:`.limit_plan`). A check-and-count runs without an ``await`` inside, so no other request interleaves:
no lock is needed. Counters whose window is empty are swept when their number has doubled since the last sweep,
so memory follows the callers active in the last minute."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from time import monotonic

from .counters import NEVER, Alternative, Meter, Refused, Slot, Ticket
from .windows import PERIOD_SECONDS, SlidingWindow, bucket_of

_SWEEP_FLOOR = 1024


class LocalCounters:
    kind = "local"
    available = True

    def __init__(self, clock: Callable[[], float] = monotonic) -> None:
        self.clock = clock
        self._windows: dict[tuple[str, str], SlidingWindow] = {}
        self._sweep_at = _SWEEP_FLOOR

    def __len__(self) -> int:
        return len(self._windows)

    async def admit(self, slots: Sequence[Slot], tokens: int) -> Ticket | Refused:
        return self.admit_now(slots, tokens)

    def admit_now(self, slots: Sequence[Slot], tokens: int) -> Ticket | Refused:
        """:meth:`admit`, synchronously."""
        now = self.clock()
        bucket = bucket_of(now)
        chosen: list[Alternative] = []
        refusals: list[Refused] = []
        for slot in slots:
            best: Refused | None = None
            for alternative in slot:
                refusal = self._refusal(alternative, tokens, now, bucket)
                if refusal is None:
                    chosen.append(alternative)
                    break
                if best is None or refusal.wait < best.wait:
                    best = refusal  # the alternative that has room soonest
            else:
                assert best is not None
                refusals.append(best)
        if refusals:
            return max(refusals, key=lambda r: r.wait)
        charged: list[Meter] = []
        for alternative in chosen:
            for meter in alternative:
                if meter.measure == "c":
                    self._window(meter, bucket).add(bucket, 1)
                else:
                    self._window(meter, bucket).add(bucket, tokens)
                    charged.append(meter)
        return Ticket(tuple(charged), bucket, tokens)

    def settle(self, ticket: Ticket, tokens: int) -> None:
        delta = tokens - ticket.reserved
        if not delta:
            return
        now_bucket = bucket_of(self.clock())
        for meter in ticket.meters:
            window = self._windows.get((meter.key, meter.measure))
            if window is not None:
                window.adjust(ticket.bucket, delta, now_bucket)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def _refusal(self, alternative: Alternative, tokens: int, now: float, bucket: int) -> Refused | None:
        worst: Refused | None = None
        for meter in alternative:
            amount = 1 if meter.measure == "c" else tokens
            limit = meter.limit
            if amount > limit > 0:
                refusal = Refused(meter, NEVER)
            else:
                window = self._windows.get((meter.key, meter.measure))
                used = window.used(bucket) if window is not None else 0
                if used + amount <= limit:
                    continue
                wait = window.wait(now, amount, limit) if window is not None and limit > 0 else float(PERIOD_SECONDS)
                refusal = Refused(meter, wait)
            if worst is None or refusal.wait > worst.wait:
                worst = refusal
        return worst

    def _window(self, meter: Meter, bucket: int) -> SlidingWindow:
        key = (meter.key, meter.measure)
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) >= self._sweep_at:
                self._sweep(bucket)
            window = self._windows[key] = SlidingWindow()
        return window

    def _sweep(self, bucket: int) -> None:
        for key in [k for k, w in self._windows.items() if w.empty(bucket)]:
            del self._windows[key]
        self._sweep_at = max(_SWEEP_FLOOR, 2 * len(self._windows))
