"""Cool-downs shared by every replica and worker through the Redis of the rate-limit counters.

A cool-down is one key, ``<prefix>:cool:{<endpoint>}:<entity>``, set with the cool-down as its expiry (``SET ...
PX``; the key removes itself when the cool-down ends, so nothing is ever left behind). :meth:`publish` sends it
in the background (the request does not wait for Redis). Every :data:`SYNC_SECONDS` each process reads the
remaining time of all its endpoints' keys (one pipeline of ``PTTL``, one round trip; the key set is bounded by
the configured endpoints and entities) and merges them into its in-process :class:`~modelgate_proxy.cooldowns
.Cooldowns`. So a 429 seen by one replica is honoured by all within :data:`SYNC_SECONDS`, and the remaining
times come from Redis' clock alone (no clock skew between replicas).

Redis unreachable: cool-downs stay per process (each replica still honours what it saw itself) and the sync
keeps trying; failures are logged once per outage. The rate-limit counters' own outage policy is unaffected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from ...cooldowns import Cooldowns

log = logging.getLogger("modelgate.proxy")

SYNC_SECONDS = 0.5


class RedisCooldowns:
    """The :class:`~modelgate_proxy.cooldowns.CooldownShare` over Redis."""

    def __init__(self, client: Callable[[], Redis], prefix: str, cooldowns: Cooldowns, *,
                 sync_seconds: float = SYNC_SECONDS) -> None:
        self._client, self.prefix, self.cooldowns = client, prefix, cooldowns
        self.sync_seconds = sync_seconds
        self._keys: dict[str, tuple[str, str]] = {}
        self._sync: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._failing = False

    def key(self, endpoint: str, entity: str) -> str:
        return f"{self.prefix}:cool:{{{endpoint}}}:{entity}"

    def watch(self, endpoint: str, entity: str) -> None:
        """Follow the cool-downs of ``entity`` of ``endpoint`` (per entity at start-up, and for endpoints added
        while serving: the workspace gateway's)."""
        self._keys[self.key(endpoint, entity)] = (endpoint, entity)
        if self._sync is None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return  # built before the event loop runs: start() begins the sync
            self._begin()

    def publish(self, endpoint: str, entity: str, seconds: float) -> None:
        task = asyncio.get_running_loop().create_task(self._set(self.key(endpoint, entity), seconds))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def start(self) -> None:
        if self._sync is None:
            self._begin()

    def _begin(self) -> None:
        self._sync = asyncio.get_running_loop().create_task(self._follow())

    async def close(self) -> None:
        if self._sync is not None:
            self._sync.cancel()
            self._sync = None
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=2)

    async def sync_once(self) -> None:
        """Read every watched key's remaining time and merge it (what the background sync does)."""
        keys = list(self._keys)
        if not keys:
            return
        async with self._client().pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.pttl(key)
            ttls = await pipe.execute()
        for key, ttl in zip(keys, ttls, strict=True):
            if isinstance(ttl, int) and ttl > 0:
                endpoint, entity = self._keys[key]
                self.cooldowns.merge(endpoint, entity, ttl / 1000)

    async def _set(self, key: str, seconds: float) -> None:
        try:
            await self._client().set(key, b"1", px=max(1, int(seconds * 1000)))
            self._ok()
        except (TimeoutError, RedisError, OSError) as exc:
            self._failed(exc)

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.sync_seconds)
            try:
                await self.sync_once()
                self._ok()
            except (TimeoutError, RedisError, OSError) as exc:
                self._failed(exc)

    def _ok(self) -> None:
        if self._failing:
            log.warning("cool-downs: Redis answers again; cool-downs are shared between replicas again")
            self._failing = False

    def _failed(self, exc: BaseException) -> None:
        if not self._failing:
            log.warning("cool-downs: Redis cannot be reached (%s); cool-downs stay per process until it is back",
                        type(exc).__name__)
            self._failing = True
