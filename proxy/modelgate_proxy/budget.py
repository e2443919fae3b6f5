"""The process's budget of bytes in flight: request bodies being read or served, and provider answers being read.

Every query request gets a :class:`Ticket`; its body's bytes (by ``Content-Length``, or as a chunked body
arrives) and the bytes of the provider answer it reads are taken from the one :class:`ByteBudget` of the process,
and given back when the request's answer is over. A request that would take the budget past its size is refused
with 503 and ``Retry-After`` (:class:`~.errors.Overloaded`) before more of it is read, so the memory of requests
in flight stays bounded whatever the concurrency (``docs/proxy.md`` has the arithmetic behind the defaults).
"""

from __future__ import annotations

from .errors import Overloaded

DEFAULT_MAX_INFLIGHT_BYTES = 32 * 1024 * 1024
"""32 MiB: two bodies at the 16 MiB limit at once; docs/proxy.md has why this fits a 256 MiB pod."""

RETRY_AFTER_SECONDS = "1"


class ByteBudget:
    """The bytes of requests in flight, against a limit."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int = DEFAULT_MAX_INFLIGHT_BYTES) -> None:
        self.limit = limit
        self.used = 0

    def ticket(self) -> Ticket:
        return Ticket(self)


class Ticket:
    """One request's share of the budget."""

    __slots__ = ("budget", "held")

    def __init__(self, budget: ByteBudget) -> None:
        self.budget = budget
        self.held = 0

    def take(self, size: int, what: str) -> None:
        """Take ``size`` more bytes for ``what`` (named in the refusal), or raise :class:`Overloaded`. A request
        alone is always admitted when the budget is otherwise empty, so one request at the body limit passes."""
        budget = self.budget
        if budget.used + size > budget.limit and budget.used > self.held:
            raise Overloaded(
                f"the proxy has {budget.limit} bytes of requests in flight at most and is at that bound; "
                f"{what} does not fit now, retry later",
                headers={"retry-after": RETRY_AFTER_SECONDS},
            )
        budget.used += size
        self.held += size

    def release(self) -> None:
        self.budget.used -= self.held
        self.held = 0
