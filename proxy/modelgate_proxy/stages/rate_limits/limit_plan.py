"""Which limits of an endpoint's ``aiGateway.rateLimits`` a caller is held to (Databricks' rules), as the slots
of :mod:`.counters`:

- every ``endpoint`` limit, for all traffic;
- a limit for this very user or service principal (``principal`` set) takes priority over group and default
  limits; else
- the limits of the caller's groups (``user_group`` with that ``principal``, or a ``user_group`` default without
  one, which every group gets for itself), shared by the group's members; a caller in several limited groups
  is refused only when every one of them is spent, and is charged to the first that has room; else
- the default per-caller limit: ``service_principal`` without ``principal`` for service principals, ``user``
  without ``principal`` for users (and for service principals without a default of their own).

Anonymous callers are one user named ``anonymous``. The count of a scope (the endpoint, a user, a group, a
service principal) is one counter per measure whichever limit uses it: a user named by a limit and the same user
under the default share their count, and two limits on the same count enforce the stricter number. With the
in-process backend and ``replicas`` > 1 each replica enforces ``ceil(limit / replicas)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ...exchange import Principal
from ...spec import RateLimit
from .counters import Measure, Meter, Slot

_KINDS = {"user": "user", "service_principal": "sp", "user_group": "group"}
_SCOPES = {"user": "user", "service_principal": "service principal", "user_group": "group"}
_CACHE_SIZE = 4096


def per_replica(limit: int, replicas: int) -> int:
    return math.ceil(limit / replicas)


class LimitPlan:
    """The compiled ``rateLimits`` of one endpoint."""

    def __init__(self, endpoint: str, limits: Iterable[RateLimit], replicas: int = 1) -> None:
        if replicas < 1:
            raise ValueError("replicas must be at least 1")
        self.endpoint, self.replicas = endpoint, replicas
        self._tag = "{" + endpoint + "}"
        endpoint_meters: dict[tuple[str, Measure], Meter] = {}
        named: dict[tuple[str, str], dict[tuple[str, Measure], Meter]] = {}
        self._defaults: dict[str, dict[Measure, int]] = {}
        """key kind -> measure -> the configured default limit (the stricter of two)."""
        self.counts_tokens = False
        for limit in limits:
            key = limit.key or "endpoint"
            measures: tuple[tuple[Measure, int | None], ...] = (("c", limit.calls), ("t", limit.tokens))
            for measure, number in measures:
                if number is None:
                    continue
                self.counts_tokens = self.counts_tokens or measure == "t"
                if key == "endpoint":
                    _keep_stricter(endpoint_meters, self._meter(f"{self._tag}:endpoint", measure, number, "endpoint"))
                elif limit.principal is not None:
                    meter = self._meter(self._key(key, limit.principal), measure, number,
                                        f"{_SCOPES[key]} {limit.principal!r}")
                    _keep_stricter(named.setdefault((key, limit.principal), {}), meter)
                else:
                    defaults = self._defaults.setdefault(key, {})
                    defaults[measure] = min(number, defaults.get(measure, number))
        self._endpoint: tuple[Meter, ...] = tuple(endpoint_meters.values())
        self._named = {who: tuple(meters.values()) for who, meters in named.items()}
        self._has_groups = "user_group" in self._defaults or any(k == "user_group" for k, _ in self._named)
        self._cache: dict[Principal, tuple[tuple[Slot, ...], bool, int | None]] = {}

    def limits_for(self, principal: Principal) -> tuple[tuple[Slot, ...], bool, int | None]:
        """The slots ``principal`` is held to, whether any of them counts tokens, and the slots'
        :func:`token_cap`; cached per principal (at most 4096 principals: a full cache starts again empty)."""
        found = self._cache.get(principal)
        if found is None:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            slots = self._slots(principal)
            found = self._cache[principal] = (
                slots, any(m.measure == "t" for slot in slots for alternative in slot for m in alternative),
                token_cap(slots))
        return found

    def _slots(self, principal: Principal) -> tuple[Slot, ...]:
        kind = "service_principal" if principal.kind == "service_principal" else "user"
        own = self._named.get((kind, principal.name))
        if own is not None:
            return ((self._endpoint + own,),)
        groups = self._group_alternatives(principal)
        if groups:
            return ((self._endpoint,), groups) if self._endpoint else (groups,)
        if kind == "service_principal" and "service_principal" not in self._defaults:
            kind = "user"
        required = self._endpoint + self._default_meters(kind, principal.name)
        return ((required,),) if required else ()

    def _group_alternatives(self, principal: Principal) -> Slot:
        if not principal.groups or not self._has_groups:
            return ()
        out = []
        for group in principal.groups:
            meters = self._named.get(("user_group", group))
            if meters is None:
                meters = self._default_meters("user_group", group)
            if meters:
                out.append(meters)
        return tuple(out)

    def _default_meters(self, key: str, name: str) -> tuple[Meter, ...]:
        defaults = self._defaults.get(key)
        if not defaults:
            return ()
        scope = f"{_SCOPES[key]} {name!r}"
        return tuple(self._meter(self._key(key, name), measure, number, scope) for measure, number in defaults.items())

    def _key(self, key: str, name: str) -> str:
        return f"{self._tag}:{_KINDS[key]}:{name}"

    def _meter(self, key: str, measure: Measure, number: int, scope: str) -> Meter:
        return Meter(key, measure, per_replica(number, self.replicas), number, scope)


def token_cap(slots: tuple[Slot, ...]) -> int | None:
    """The most tokens one request can be admitted with: per slot the roomiest alternative's tightest token
    limit, then the tightest slot (``None`` when no slot counts tokens)."""
    cap: float = math.inf
    for slot in slots:
        roomiest = max((min((m.limit for m in alternative if m.measure == "t"), default=math.inf)
                        for alternative in slot), default=math.inf)
        cap = min(cap, roomiest)
    return None if cap == math.inf else int(cap)


def _keep_stricter(meters: dict[tuple[str, Measure], Meter], meter: Meter) -> None:
    known = meters.get((meter.key, meter.measure))
    if known is None or meter.limit < known.limit:
        meters[(meter.key, meter.measure)] = meter
