"""The Redis counter backend: one Redis shared by every replica and worker process of an endpoint, so the
configured limits hold for the endpoint as a whole (the replica count divides nothing). Admissions are decided by
:data:`~.redis_scripts.ADMIT` (check every slot, count, reserve: atomic per admission), one ``EVALSHA`` per
endpoint for all the admissions that arrive while the previous call is under way (at most :data:`ADMIT_BATCH`):
one request alone waits one round trip as before, and under load one round trip serves many requests (no timer:
a batch waits only for the call before it). Settlements are sent in the background, gathered for
:data:`SETTLE_DELAY` (20 ms) into one :data:`~.redis_scripts.SETTLE` per endpoint. A caller that leaves while
its admission waits gets its reservation settled back to 0.

**Configuration** (:class:`RedisSettings`): a ``redis://`` or ``rediss://`` URL without a password (a URL is
shown in process lists and pod specs), the password read from a file (a Kubernetes Secret volume; read again for
every new connection, so a rotated Secret is picked up), a key prefix (installations sharing one Redis), and a
timeout per command.

**Redis unreachable.** The first command that fails on the connection marks the backend down
(``modelgate_rate_limit_store_up`` 0); from then on no request waits for Redis: :meth:`RedisCounters.admit`
raises :class:`~.counters.CountersUnavailable` at once and the endpoint's policy decides (:mod:`.admission`), and
a probe sends ``PING`` every :data:`PROBE_SECONDS` until Redis answers, then marks it up again. Settlements that
cannot be sent are dropped: the reservation stays and leaves the window with it (never an undercount).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.credentials import CredentialProvider
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .counters import NEVER, CountersUnavailable, Meter, Refused, Slot, Ticket
from .redis_scripts import ADMIT, SETTLE
from .redis_settings import RedisSettings
from .windows import BUCKET_SECONDS, PERIOD_SECONDS, SPAN

log = logging.getLogger("modelgate.proxy")

PROBE_SECONDS = 1.0
SETTLE_DELAY = 0.02
"""Settlements are gathered for this long (or until :data:`SETTLE_BATCH` wait) and sent in one script call."""
SETTLE_BATCH = 256
ADMIT_BATCH = 64
"""At most this many admissions of one endpoint in one script call."""
ENCODED_CACHE = 4096
"""Slot sets whose encoding is kept (a full cache starts again empty)."""
_EXPIRY_MS = (SPAN * BUCKET_SECONDS + 1) * 1000
_WINDOW = f',"g":{BUCKET_SECONDS},"w":{SPAN},"p":{PERIOD_SECONDS},"x":{_EXPIRY_MS}'
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)


class PasswordFile(CredentialProvider):
    """The password from a file, read for each new connection (a rotated Secret is picked up)."""

    def __init__(self, path: str, username: str | None) -> None:
        self.path, self.username = Path(path), username

    def get_credentials(self) -> tuple[str] | tuple[str, str]:
        password = self.path.read_text().strip()
        return (self.username, password) if self.username else (password,)


@dataclass(slots=True)
class _Admission:
    """One admission waiting for its script call."""

    slots: tuple[Slot, ...]
    tokens: int
    keys: list[str]
    arg: str
    """Its JSON object without its key indexes and the closing brace."""
    future: asyncio.Future[Ticket | Refused]


def _decision(slots: tuple[Slot, ...], tokens: int, reply: list[Any]) -> Ticket | Refused:
    if reply[0] == 1:
        bucket = int(reply[1])
        charged = tuple(meter for slot, chosen in zip(slots, reply[2:], strict=True)
                        for meter in slot[int(chosen) - 1] if meter.measure == "t")
        return Ticket(charged, bucket, tokens)
    _, s, a, m, wait_ms = (int(x) for x in reply)
    meter: Meter = slots[s - 1][a - 1][m - 1]
    return Refused(meter, NEVER if wait_ms < 0 else wait_ms / 1000)


class RedisCounters:
    kind = "redis"

    def __init__(self, settings: RedisSettings, *, clock: Callable[[], float] | None = None,
                 on_state: Callable[[bool], None] | None = None, on_error: Callable[[], None] | None = None) -> None:
        settings.check()
        self.settings = settings
        self.clock = clock
        """Replaces the Redis server's clock when set (tests)."""
        self._on_state, self._on_error = on_state, on_error
        self._client: Redis | None = None
        self._admit: Any = None
        self._settle: Any = None
        self._up = True
        self._probe: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._queued: dict[str, list[tuple[int, int, tuple[Meter, ...]]]] = {}
        """Settlements waiting to be sent, per endpoint (hash tag)."""
        self._timer: asyncio.TimerHandle | None = None
        self._waiting: dict[str, list[_Admission]] = {}
        """Admissions waiting for the script call under way, per endpoint (hash tag)."""
        self._admitting: dict[str, asyncio.Task[None]] = {}
        self._encoded: dict[int, tuple[tuple[Slot, ...], list[str], str]] = {}
        """``id(slots)`` -> the slots (kept: the id cannot be reused while they are here), their keys and JSON."""

    @property
    def available(self) -> bool:
        return self._up

    async def start(self) -> None:
        client = self._connect()
        try:
            await client.ping()
        except _UNREACHABLE as exc:
            self._mark_down(exc)
        else:
            self._set_state(True)

    async def flush(self) -> None:
        """Send the queued settlements now and wait for those under way (each is bounded by the timeout)."""
        if self._queued:
            self._send_queued()
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=self.settings.timeout * 4)

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
        await self.flush()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def admit(self, slots: Sequence[Slot], tokens: int) -> Ticket | Refused:
        if not self._up:
            raise CountersUnavailable(f"the rate-limit store (Redis at {self.settings.where}) is unreachable")
        self._connect()
        slots = tuple(slots)
        keys, spec = self._encode(slots)
        now = f',"n":{self.clock()!r}' if self.clock is not None else ""
        loop = asyncio.get_running_loop()
        admission = _Admission(slots, tokens, keys, f'{spec},"a":{tokens}{now},"k":', loop.create_future())
        tag = keys[0].partition("}")[0] if keys else ""  # one endpoint's keys: one Redis Cluster slot per script
        self._waiting.setdefault(tag, []).append(admission)
        if tag not in self._admitting:
            self._admitting[tag] = loop.create_task(self._send_admissions(tag))
        return await admission.future

    async def _send_admissions(self, tag: str) -> None:
        """Send the admissions waiting for ``tag``, :data:`ADMIT_BATCH` at a time in one script call each, until
        none waits (those arriving while a call is under way go in the next call)."""
        try:
            await self._send_waiting(tag)
        finally:
            self._admitting.pop(tag, None)  # no await since the last look at the queue: nothing is left behind

    async def _send_waiting(self, tag: str) -> None:
        while waiting := self._waiting.pop(tag, None):
            batch = waiting[:ADMIT_BATCH]
            if len(waiting) > ADMIT_BATCH:
                self._waiting[tag] = waiting[ADMIT_BATCH:]
            try:
                replies = await self._run_admit(batch)
            except BaseException as exc:
                for admission in batch:
                    if not admission.future.done():
                        admission.future.set_exception(
                            exc if isinstance(exc, CountersUnavailable) else CountersUnavailable(str(exc)))
                if not isinstance(exc, CountersUnavailable):
                    raise
                continue
            for admission, reply in zip(batch, replies, strict=True):
                decision = _decision(admission.slots, admission.tokens, reply)
                if not admission.future.done():
                    admission.future.set_result(decision)
                elif isinstance(decision, Ticket) and decision.meters:
                    self.settle(decision, 0)  # the caller left while waiting: give its reservation back

    async def _run_admit(self, batch: list[_Admission]) -> list[Any]:
        if not self._up:
            raise CountersUnavailable(f"the rate-limit store (Redis at {self.settings.where}) is unreachable")
        index: dict[str, int] = {}  # the batch's distinct keys: most admissions of a batch share theirs
        specs: list[str] = []
        for admission in batch:
            own = ",".join([str(index.setdefault(key, len(index) + 1)) for key in admission.keys])
            specs.append(f"{admission.arg}[{own}]}}")
        try:
            replies: list[Any] = await self._admit(keys=list(index), args=["[" + ",".join(specs) + "]"])
        except _UNREACHABLE as exc:
            self._mark_down(exc)
            raise CountersUnavailable(
                f"the rate-limit store (Redis at {self.settings.where}) is unreachable") from exc
        except RedisError as exc:
            self._error()
            log.error("rate limits: the Redis admission script failed: %s", type(exc).__name__)
            raise CountersUnavailable("the rate-limit store answered an error") from exc
        return replies

    def settle(self, ticket: Ticket, tokens: int) -> None:
        delta = tokens - ticket.reserved
        if not delta or not ticket.meters or not self._up:
            return
        tag = ticket.meters[0].key.partition("}")[0]  # one endpoint's keys: one Redis Cluster slot per script
        queued = self._queued.setdefault(tag, [])
        queued.append((ticket.bucket, delta, ticket.meters))
        if len(queued) >= SETTLE_BATCH:
            self._send_queued()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(SETTLE_DELAY, self._send_queued)

    def _send_queued(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batches, self._queued = self._queued, {}
        loop = asyncio.get_running_loop()
        for batch in batches.values():
            task = loop.create_task(self._send_settle(batch))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _send_settle(self, batch: list[tuple[int, int, tuple[Meter, ...]]]) -> None:
        prefix = self.settings.prefix
        index: dict[str, int] = {}
        entries = [[bucket, delta, sorted({index.setdefault(f"{prefix}:{m.key}", len(index) + 1) for m in meters})]
                   for bucket, delta, meters in batch]
        now = f',"n":{self.clock()!r}' if self.clock is not None else ""
        try:
            await self._settle(keys=list(index), args=['{"e":' + orjson.dumps(entries).decode() + _WINDOW + now + "}"])
        except _UNREACHABLE as exc:
            self._mark_down(exc)
        except RedisError as exc:
            self._error()
            log.error("rate limits: the Redis settlement script failed: %s", type(exc).__name__)

    def client(self) -> Redis:
        """The backend's Redis client (shared with the back-pressure cool-downs: one pool per process)."""
        return self._connect()

    def _connect(self) -> Redis:
        if self._client is None:
            s = self.settings
            username = urlsplit(s.url).username
            provider = PasswordFile(s.password_file, username) if s.password_file is not None else None
            self._client = Redis.from_url(
                s.url, socket_timeout=s.timeout, socket_connect_timeout=s.timeout, credential_provider=provider,
                retry=Retry(NoBackoff(), 1), health_check_interval=0, decode_responses=False,
            )
            self._admit = self._client.register_script(ADMIT)
            self._settle = self._client.register_script(SETTLE)
        return self._client

    def _encode(self, slots: tuple[Slot, ...]) -> tuple[list[str], str]:
        """The keys and the JSON of ``slots`` without the tokens, cached by identity (the plan hands out the same
        tuples; hashing their meters cost more than the lookup saved), at most :data:`ENCODED_CACHE` entries."""
        found = self._encoded.get(id(slots))
        if found is None or found[0] is not slots:
            if len(self._encoded) >= ENCODED_CACHE:
                self._encoded.clear()
            index: dict[str, int] = {}
            encoded = [[[[index.setdefault(m.key, len(index) + 1), m.measure, m.limit] for m in alternative]
                        for alternative in slot] for slot in slots]
            prefix = self.settings.prefix
            found = self._encoded[id(slots)] = (slots, [f"{prefix}:{key}" for key in index],
                                                '{"s":' + orjson.dumps(encoded).decode() + _WINDOW)
        return found[1], found[2]

    def _error(self) -> None:
        if self._on_error is not None:
            self._on_error()

    def _mark_down(self, exc: BaseException) -> None:
        self._error()
        if self._up:
            log.warning("rate limits: Redis at %s is unreachable (%s); the endpoints' policy applies until it is back",
                        self.settings.where, type(exc).__name__)
        self._set_state(False)
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._wait_for_redis())

    def _set_state(self, up: bool) -> None:
        self._up = up
        if self._on_state is not None:
            self._on_state(up)

    async def _wait_for_redis(self) -> None:
        client = self._connect()
        while True:
            await asyncio.sleep(PROBE_SECONDS)
            try:
                await client.connection_pool.disconnect()  # connections from before the outage are dead
                await client.ping()
            except _UNREACHABLE:
                continue
            except RedisError as exc:
                log.warning("rate limits: Redis at %s answers an error (%s)", self.settings.where, type(exc).__name__)
                continue
            log.warning("rate limits: Redis at %s is reachable again", self.settings.where)
            self._set_state(True)
            return
