"""What a request asks of the rate-limit counters, what they answer, and the one interface both counter
backends implement: :class:`~.local_counters.LocalCounters` (in the process; the default of ``modelgate serve``)
and :class:`~.redis_counters.RedisCounters` (one Redis shared by every replica and worker of an endpoint).

A request is held to *slots* (:data:`Slot`), each a choice between *alternatives* (:data:`Alternative`): a tuple
of :class:`Meter` s that must all have room. A slot is charged to its first alternative with room (a caller in
several limited groups: one alternative per group); the request is admitted only when every slot has one. Both
backends decide the same way, atomically (the in-process one between two ``await`` s, the Redis one in one Lua
script), over the same sliding window (:mod:`.windows`).

An admitted request gets a :class:`Ticket` naming the token meters it reserved on; when the answer is over the
reservation is settled to the tokens really used (:meth:`CounterBackend.settle`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Measure = Literal["c", "t"]
"""``c``: calls (each request counts 1), ``t``: tokens (a request reserves its estimate, then its real use)."""

NEVER = float("inf")
"""The wait of a refusal that no wait can lift (a reservation larger than the limit itself)."""


@dataclass(frozen=True, slots=True)
class Meter:
    """One counted quantity with its limit."""

    key: str
    """What is counted, unique per endpoint and scope: ``{<endpoint>}:endpoint``, ``{<endpoint>}:user:<name>``,
    ``...:sp:<id>``, ``...:group:<name>`` (the braces are a Redis Cluster hash tag: one endpoint's keys share a
    slot, as one script touches them all). Calls and tokens of a scope share the key; ``measure`` tells them
    apart."""
    measure: Measure
    limit: int
    """The limit enforced here (with the in-process backend and ``--rate-limit-replicas N``: per replica)."""
    configured: int
    """The limit as configured, for messages."""
    scope: str
    """Whose limit it is, for messages: ``endpoint``, ``user 'x'``, ``group 'g'``, ``service principal 's'``;
    never a credential."""

    def describe(self) -> str:
        unit = "calls" if self.measure == "c" else "tokens"
        return f"{self.configured} {unit} per minute ({self.scope})"


Alternative = tuple[Meter, ...]
Slot = tuple[Alternative, ...]


@dataclass(frozen=True, slots=True)
class Ticket:
    """What an admitted request reserved: settled when its answer is over."""

    meters: tuple[Meter, ...]
    """The token meters charged (empty when the request counted calls only)."""
    bucket: int
    """The window bucket the reservation went to."""
    reserved: int


@dataclass(frozen=True, slots=True)
class Refused:
    """Why a request was refused: the meter that had no room, and the seconds until it has."""

    meter: Meter
    wait: float
    """Seconds until the meter has room again (if nothing else is admitted); :data:`NEVER` when the request's
    reservation alone exceeds the limit."""

    @property
    def too_large(self) -> bool:
        return self.wait == NEVER


class CountersUnavailable(Exception):
    """The backend cannot tell (its store is unreachable): the endpoint's policy decides."""


class CounterBackend(Protocol):
    """Where an endpoint's counts live."""

    kind: str
    """``local`` or ``redis``."""

    @property
    def available(self) -> bool:
        """Whether the backend can count now (the in-process one always can)."""
        ...

    async def admit(self, slots: Sequence[Slot], tokens: int) -> Ticket | Refused:
        """Check every slot and, when all have room, count the call (1 per calls meter) and reserve ``tokens``
        on every tokens meter, atomically. Raises :class:`CountersUnavailable` when it cannot tell."""
        ...

    def settle(self, ticket: Ticket, tokens: int) -> None:
        """Replace the ticket's reservation by ``tokens`` (the tokens really used); never blocks: a shared
        backend sends it in the background, and a reservation it cannot settle stays as reserved."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...
