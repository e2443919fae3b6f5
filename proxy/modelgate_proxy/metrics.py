"""Prometheus metrics, named after the OpenTelemetry GenAI semantic conventions.

OTel name (dots become underscores)            | kind      | labels
-----------------------------------------------|-----------|---------------------------------------------
gen_ai.server.request.duration (s)             | histogram | endpoint, served_entity
gen_ai.server.time_to_first_token (s)          | histogram | endpoint, served_entity (streams only)
gen_ai.server.time_per_output_token (s)        | histogram | endpoint, served_entity (streams only)
gen_ai.client.token.usage ({token})            | histogram | endpoint, served_entity, gen_ai_token_type
modelgate_upstream_responses_total             | counter   | endpoint, served_entity, status_code
modelgate_requests_total                       | counter   | endpoint, status_code
modelgate_proxy_overhead_seconds               | histogram | endpoint
modelgate_usage_tokens_total                   | counter   | endpoint, served_entity, token_type (usage tracking)
modelgate_rate_limited_total                   | counter   | endpoint (rate limits)
modelgate_rate_limit_unchecked_total           | counter   | endpoint (admitted unchecked: store down, policy open)
modelgate_rate_limit_store_up                  | gauge     | (1: the Redis counter store answers; Redis backend only)
modelgate_rate_limit_store_errors_total        | counter   | (failed Redis commands)
modelgate_principal_requests_total             | counter   | endpoint, principal, principal_type (usage tracking)
modelgate_principal_tokens_total               | counter   | endpoint, principal, principal_type, token_type
modelgate_guardrail_blocked_total              | counter   | endpoint, direction, guardrail
modelgate_guardrail_decisions_total            | counter   | endpoint, direction, guardrail, decision
modelgate_guardrail_judge_seconds              | histogram | endpoint, outcome (``ok``, ``error``, ``timeout``)
modelgate_provider_retries_total               | counter   | endpoint, served_entity, reason (back-pressure)
modelgate_fallbacks_total                      | counter   | endpoint, served_entity (left), reason
modelgate_cooldowns_total                      | counter   | endpoint, served_entity, reason
modelgate_records_dropped_total                | counter   | record (``usage``, ``payload``)
modelgate_table_rows_dropped_total             | counter   | table, reason (Delta tables; see stages.records.table_sink)

Bucket boundaries follow the conventions' advice. Labels are configuration names only (an unknown endpoint
named by a caller is counted as ``endpoint=""``), never a credential or a caller-chosen string, with one bounded
exception: the principal of the ``modelgate_principal_*`` families (:class:`PrincipalUsage`: at most N principals
per endpoint, the rest as ``principal="other", principal_type="other"``).
Each app has its own registry; with ``--workers`` above 1 each worker exposes its own figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from time import monotonic, time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The metric families of one app."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=False)
        entity = ["endpoint", "served_entity"]
        self.duration = Histogram(
            "gen_ai_server_request_duration_seconds", "GenAI server request duration (arrival to last byte).",
            entity, buckets=DURATION_BUCKETS, registry=r,
        )
        self.ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds", "Time from arrival to the first streamed chunk.",
            entity, buckets=TTFT_BUCKETS, registry=r,
        )
        self.tpot = Histogram(
            "gen_ai_server_time_per_output_token_seconds", "Time per output token after the first (streams).",
            entity, buckets=TPOT_BUCKETS, registry=r,
        )
        self.tokens = Histogram(
            "gen_ai_client_token_usage", "Tokens used per request, by type (input, output).",
            [*entity, "gen_ai_token_type"], buckets=TOKEN_BUCKETS, registry=r,
        )
        self.upstream = Counter(
            "modelgate_upstream_responses", "Provider answers by HTTP status (0: no answer).",
            [*entity, "status_code"], registry=r,
        )
        self.requests = Counter(
            "modelgate_requests", "Requests answered by the proxy, by HTTP status.", ["endpoint", "status_code"],
            registry=r,
        )
        self.overhead = Histogram(
            "modelgate_proxy_overhead_seconds", "Time spent in the proxy itself (total minus upstream).",
            ["endpoint"], buckets=OVERHEAD_BUCKETS, registry=r,
        )
        self.usage_tokens = LoopCounter(
            "modelgate_usage_tokens", "Tokens of tracked requests (usage tracking), by type (input, output).",
            [*entity, "token_type"], registry=r,
        )
        self.rate_limited = Counter(
            "modelgate_rate_limited", "Requests refused by the endpoint's rate limits.", ["endpoint"], registry=r,
        )
        self.rate_limit_unchecked = Counter(
            "modelgate_rate_limit_unchecked", "Requests admitted without a rate-limit check: the counter store was "
            "unreachable and the endpoint's policy is open.", ["endpoint"], registry=r,
        )
        self.rate_limit_store_up = Gauge(
            "modelgate_rate_limit_store_up", "1 while the shared rate-limit counter store (Redis) answers, else 0.",
            registry=r,
        )
        self.rate_limit_store_errors = Counter(
            "modelgate_rate_limit_store_errors", "Commands to the shared rate-limit counter store that failed.",
            registry=r,
        )
        self.principal_requests = LoopCounter(
            "modelgate_principal_requests", "Tracked requests per principal (bounded: see PrincipalUsage).",
            ["endpoint", "principal", "principal_type"], registry=r,
        )
        self.principal_tokens = LoopCounter(
            "modelgate_principal_tokens", "Tokens of tracked requests per principal, by type (input, output).",
            ["endpoint", "principal", "principal_type", "token_type"], registry=r,
        )
        self.guardrail_blocks = Counter(
            "modelgate_guardrail_blocked", "Requests or answers refused by a guardrail.",
            ["endpoint", "direction", "guardrail"], registry=r,
        )
        self.guardrail_decisions = Counter(
            "modelgate_guardrail_decisions",
            "Guardrail decisions: blocked, masked, unavailable (no verdict, FAIL_CLOSED), logged (no verdict, LOG_ONLY).",
            ["endpoint", "direction", "guardrail", "decision"], registry=r,
        )
        self.guardrail_judge = Histogram(
            "modelgate_guardrail_judge_seconds", "Latency of the guardrail judge model's verdicts.",
            ["endpoint", "outcome"], buckets=DURATION_BUCKETS, registry=r,
        )
        self.records_dropped = Counter(
            "modelgate_records_dropped", "Usage or payload records dropped because their queue was full.",
            ["record"], registry=r,
        )
        self.table_rows_dropped = Counter(
            "modelgate_table_rows_dropped", "Rows of a Delta table (payload, usage) dropped, by reason.",
            ["table", "reason"], registry=r,
        )
        backpressure = [*entity, "reason"]  # reason: errors.failure_reason (a dozen values at most)
        self.provider_retries = Counter(
            "modelgate_provider_retries", "Provider calls tried again after a retryable failure.", backpressure,
            registry=r,
        )
        self.fallbacks = Counter(
            "modelgate_fallbacks", "Requests that left a served entity for the next one (fallbacks).", backpressure,
            registry=r,
        )
        self.cooldowns = Counter(
            "modelgate_cooldowns", "Served entities cooled down after a 429 with a reset time.", backpressure,
            registry=r,
        )
        self._requests: dict[tuple[str, int], Counter] = {}
        self._overhead: dict[str, Histogram] = {}

    def for_entity(self, endpoint: str, entity: str) -> EntityMetrics:
        return EntityMetrics(self, endpoint, entity)

    def count_request(self, endpoint: str, status: int) -> None:
        key = (endpoint, status)
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = self.requests.labels(endpoint, str(status))
        child.inc()

    def overhead_of(self, endpoint: str) -> Histogram:
        child = self._overhead.get(endpoint)
        if child is None:
            child = self._overhead[endpoint] = self.overhead.labels(endpoint)
        return child

    def rate_limited_of(self, endpoint: str) -> Callable[[], None]:
        child = self.rate_limited.labels(endpoint)
        return child.inc

    def rate_limit_unchecked_of(self, endpoint: str) -> Callable[[], None]:
        child = self.rate_limit_unchecked.labels(endpoint)
        return child.inc

    def rate_limit_store_state(self, up: bool) -> None:
        self.rate_limit_store_up.set(1 if up else 0)

    def rate_limit_store_error(self) -> None:
        self.rate_limit_store_errors.inc()

    def principal_usage(self, limit: int) -> PrincipalUsage:
        return PrincipalUsage(self.principal_requests, self.principal_tokens, limit)

    def guardrail_blocked(self, endpoint: str, direction: str, guardrail: str) -> None:
        self.guardrail_blocks.labels(endpoint, direction, guardrail).inc()

    def guardrail_decided(self, endpoint: str, direction: str, guardrail: str, decision: str) -> None:
        self.guardrail_decisions.labels(endpoint, direction, guardrail, decision).inc()

    def guardrail_judged(self, endpoint: str, outcome: str, seconds: float) -> None:
        self.guardrail_judge.labels(endpoint, outcome).observe(seconds)

    def record_dropped(self, record: str) -> None:
        self.records_dropped.labels(record if record in ("usage", "payload") else "other").inc()

    def table_rows_lost(self, table: str, reason: str, rows: int) -> None:
        self.table_rows_dropped.labels(table, reason).inc(rows)

    def retried(self, endpoint: str, entity: str, reason: str) -> None:
        self.provider_retries.labels(endpoint, entity, reason).inc()

    def fell_back(self, endpoint: str, entity: str, reason: str) -> None:
        self.fallbacks.labels(endpoint, entity, reason).inc()

    def cooled(self, endpoint: str, entity: str, reason: str) -> None:
        self.cooldowns.labels(endpoint, entity, reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class EntityMetrics:
    """Children pre-bound to one (endpoint, served entity): the hot path does no label lookups."""

    __slots__ = (
        "_parent", "_upstream", "duration", "endpoint", "entity", "input_tokens", "output_tokens", "overhead", "tpot",
        "ttft",
    )

    def __init__(self, parent: Metrics, endpoint: str, entity: str) -> None:
        self._parent = parent
        self.endpoint, self.entity = endpoint, entity
        self.duration = parent.duration.labels(endpoint, entity)
        self.ttft = parent.ttft.labels(endpoint, entity)
        self.tpot = parent.tpot.labels(endpoint, entity)
        self.input_tokens = parent.tokens.labels(endpoint, entity, "input")
        self.output_tokens = parent.tokens.labels(endpoint, entity, "output")
        self.overhead = parent.overhead_of(endpoint)
        self._upstream: dict[int, Counter] = {}

    def upstream_status(self, status: int) -> None:
        child = self._upstream.get(status)
        if child is None:
            child = self._upstream[status] = self._parent.upstream.labels(self.endpoint, self.entity, str(status))
        child.inc()

    def usage(self, usage: object) -> tuple[int, int] | None:
        """Record an OpenAI ``usage`` object; returns (input, output) tokens when it had them."""
        if not isinstance(usage, dict):
            return None
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if isinstance(prompt, int):
            self.input_tokens.observe(prompt)
        if isinstance(completion, int):
            self.output_tokens.observe(completion)
        return (prompt if isinstance(prompt, int) else 0, completion if isinstance(completion, int) else 0)


class LoopCount:
    """One series of a :class:`LoopCounter`: a plain number, added to without a lock."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time()

    def inc(self, amount: float = 1) -> None:
        self.value += amount


class LoopCounter:
    """A counter family for the request path of usage tracking, exported exactly as a ``prometheus_client``
    ``Counter`` of the same name, documentation and labels is (``<name>_total`` and ``<name>_created`` per label
    set), but counted in plain numbers: ``Counter.inc`` takes a lock per call (0.6-0.8 µs; usage tracking made five
    per request), which the one thread that counts here (the event loop's) does not need. The registry reads the
    numbers when ``/metrics`` is rendered, through :meth:`collect` (the loop's thread too; a reader on another
    thread sees each number whole, as a float store is atomic under the GIL). The same interface as the
    ``Counter`` where :class:`PrincipalUsage` and usage tracking use it: ``labels(...).inc(n)`` and ``remove``."""

    def __init__(self, name: str, documentation: str, labelnames: list[str], registry: CollectorRegistry) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self._series: dict[tuple[str, ...], LoopCount] = {}
        registry.register(self)

    def labels(self, *values: str) -> LoopCount:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: {len(self.labelnames)} label values expected, got {len(values)}")
        key = tuple(str(v) for v in values)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = LoopCount()
        return series

    def remove(self, *values: str) -> None:
        self._series.pop(tuple(str(v) for v in values), None)

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for key, series in list(self._series.items()):
            family.add_metric(key, series.value, created=series.created)
        yield family

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)


OTHER = "other"


class PrincipalUsage:
    """Usage per principal with a bounded label set: per endpoint, at most ``limit`` principals have series of
    their own, in the order they first came; the others are counted as ``principal="other",
    principal_type="other"`` (no principal has that type). A principal that has sent nothing for
    ``idle_seconds`` gives its place up (its series are removed) when a newcomer needs one, checked at most once
    a minute. So an endpoint has at most ``limit + 1`` principal label values at any time, and many callers, or
    one caller under many names, cannot grow the series beyond that."""

    def __init__(self, requests: Counter | LoopCounter, tokens: Counter | LoopCounter, limit: int,
                 idle_seconds: float = 600.0,
                 clock: Callable[[], float] = monotonic) -> None:
        self.requests, self.tokens, self.limit = requests, tokens, limit
        self.idle_seconds, self.clock = idle_seconds, clock
        self._known: dict[str, dict[tuple[str, str], list[Any]]] = {}
        """endpoint -> (type, name) -> [requests child, input child, output child, last use]."""
        self._other: dict[str, list[Any]] = {}
        self._next_sweep: dict[str, float] = {}

    def labelled(self, endpoint: str) -> int:
        """Principals of ``endpoint`` that have series of their own."""
        return len(self._known.get(endpoint, ()))

    def record(self, endpoint: str, kind: str, name: str, input_tokens: int | None, output_tokens: int | None) -> None:
        now = self.clock()
        known = self._known.setdefault(endpoint, {})
        children = known.get((kind, name))
        if children is None:
            if len(known) >= self.limit:
                self._sweep(endpoint, known, now)
            if len(known) < self.limit:
                children = known[(kind, name)] = self._children(endpoint, name, kind)
            else:
                children = self._other.get(endpoint)
                if children is None:
                    children = self._other[endpoint] = self._children(endpoint, OTHER, OTHER)
        children[3] = now
        children[0].inc()
        if input_tokens:
            children[1].inc(input_tokens)
        if output_tokens:
            children[2].inc(output_tokens)

    def _children(self, endpoint: str, name: str, kind: str) -> list[Any]:
        return [self.requests.labels(endpoint, name, kind), self.tokens.labels(endpoint, name, kind, "input"),
                self.tokens.labels(endpoint, name, kind, "output"), 0.0]

    def _sweep(self, endpoint: str, known: dict[tuple[str, str], list[Any]], now: float) -> None:
        if now < self._next_sweep.get(endpoint, -1.0):
            return
        self._next_sweep[endpoint] = now + 60.0
        for (kind, name) in [who for who, children in known.items() if now - children[3] >= self.idle_seconds]:
            del known[(kind, name)]
            self.requests.remove(endpoint, name, kind)
            for token_type in ("input", "output"):
                self.tokens.remove(endpoint, name, kind, token_type)
