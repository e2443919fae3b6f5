"""The proxy's own recording span (docs/tracing.md, "Cost"): what the SDK's ``Tracer.start_span`` and ``Span`` do
for a span, without what a span made by the proxy's own code does not need, ended into the SDK's
``ReadableSpan`` for the SDK's span processors and exporters.

Why not the SDK's ``Span``: profiled under load, it was most of what tracing cost on the event loop. It checks every
attribute value (the proxy sets only strings, numbers, booleans and lists of strings it built itself), takes a lock
on each call (the proxy uses a span from one task), copies its attributes twice and builds its readable copy at
the end. Ended, the OTLP exporter's encoder reads it as it is; other exporters get the SDK's ``ReadableSpan``.
What stays the SDK's: the sampler (``OTEL_TRACES_SAMPLER``), the id generator, the resource
(``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), the span limits (``OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT``,
``OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT``: a span past them goes through the SDK's ``BoundedAttributes``), the
``SpanContext`` (made as its constructor makes it, without the keyword call) and ``TraceFlags`` (the same flags
the SDK's tracer sets), the propagators, the batch span
processor and the exporters. Not done: span processors' ``on_start`` (the proxy's only processors are the SDK's
batch processors, whose ``on_start`` does nothing), the SDK's opt-in internal tracer metrics
(``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED``), span events and links (the proxy records none).
"""

from __future__ import annotations

import os
import weakref
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from time import time_ns
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import ReadableSpan, SpanLimits
    from opentelemetry.sdk.trace.sampling import Sampler
    from opentelemetry.sdk.util.instrumentation import InstrumentationScope
    from opentelemetry.trace import SpanContext, SpanKind


class _SDK:
    """The SDK names a span's hot path uses, imported once (a proxy with tracing off never imports them)."""

    def load(self) -> None:
        from opentelemetry.attributes import BoundedAttributes
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags
        from opentelemetry.trace import set_span_in_context as in_context

        class FinishedSpan(ReadableSpan):
            """A ``ReadableSpan`` of the proxy's: no events, no links, nothing dropped. Those answers are plain
            class attributes (the base class's properties build tuples and make ``isinstance`` checks on each
            call: the exporter's encoder asks each span)."""

            events: Any = ()
            links: Any = ()
            dropped_attributes: Any = 0
            dropped_events: Any = 0
            dropped_links: Any = 0

        self.BoundedAttributes, self.ReadableSpan, self.SpanContext = BoundedAttributes, ReadableSpan, SpanContext
        self.FinishedSpan = FinishedSpan
        self.NonRecordingSpan, self.set_span_in_context = NonRecordingSpan, in_context
        self.UNSET, self.Status, self.ERROR = Status(StatusCode.UNSET), Status, StatusCode.ERROR
        self.flags = {(sampled, random): TraceFlags((TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
                                                    | (TraceFlags.RANDOM_TRACE_ID if random else 0))
                      for sampled in (False, True) for random in (False, True)}
        self.span_context = _span_context(SpanContext)


def _span_context(span_context: Any) -> Callable[[int, int, Any, Any], SpanContext]:
    """``SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags, trace_state=state)``, made as its
    ``__new__`` makes it (a tuple of the ids, ``is_remote``, the flags, the state or the default one, and whether
    the ids are valid) without its keyword call; the SDK's constructor if its tuple is not that one."""
    from opentelemetry.trace.span import DEFAULT_TRACE_STATE

    def fast(trace_id: int, span_id: int, flags: Any, state: Any) -> SpanContext:
        made: SpanContext = _new_tuple(span_context, (
            trace_id, span_id, False, flags, DEFAULT_TRACE_STATE if state is None else state,
            0 < trace_id < _TRACE_ID_END and 0 < span_id < _SPAN_ID_END))
        return made

    def sdk(trace_id: int, span_id: int, flags: Any, state: Any) -> SpanContext:
        made: SpanContext = span_context(trace_id, span_id, is_remote=False, trace_flags=flags, trace_state=state)
        return made

    probes = [(1, 2, 1, None), (0, 2, 0, DEFAULT_TRACE_STATE), (1, 0, 1, None), (1 << 128, 1, 1, None)]
    same = all(tuple(fast(*probe)) == tuple(sdk(*probe)) and type(fast(*probe)) is type(sdk(*probe))
               for probe in probes)
    return fast if same else sdk  # pragma: no branch


_new_tuple = tuple.__new__
_TRACE_ID_END, _SPAN_ID_END = 1 << 128, 1 << 64


_sdk: Any = _SDK()

NO_ATTRIBUTES: Mapping[str, Any] = MappingProxyType({})
"""No base attributes."""


class SpanFactory:
    """Starts :class:`LiveSpan` s the way the SDK's tracer starts its spans (sampler, ids, flags)."""

    def __init__(self, sampler: Sampler, id_generator: Any, resource: Resource, scope: InstrumentationScope,
                 limits: SpanLimits, processors: Sequence[Any]) -> None:
        _sdk.load()
        self.sampler, self.ids = sampler, id_generator
        self.random_ids = bool(id_generator.is_trace_id_random())
        self.recorder = _Recorder(resource, scope, limits, processors)
        self.inline = _inline_sampler(sampler)
        """The SDK's always-on or parent-based always-on sampler (the default), whose decision is made here
        without a call (the same decision: tests/proxy/test_trace_spans.py); False for any other sampler."""
        self.needs_context = not self.inline
        """Whether :meth:`start` reads ``context`` (only a sampler called for its decision does)."""
        self.unset_status = _sdk.UNSET
        """The SDK's unset ``Status`` every span starts with (one object)."""

    def start(self, name: str, context: Context | None, parent: SpanContext | None, kind: SpanKind,
              attributes: dict[str, Any], start_time: int | None = None,
              base: Mapping[str, Any] = NO_ATTRIBUTES) -> LiveSpan:
        """A span named ``name`` under ``parent`` (the span context in ``context``; None or invalid: a new
        trace), recording unless the sampler drops it. Its attributes are ``base`` (constant attributes shared by
        many spans, made once and never changed: the exporter encodes them once) followed by ``attributes`` (this
        span's own: the span keeps the dict and adds to it)."""
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = self.ids.generate_trace_id()
            random = self.random_ids
        else:
            trace_id = parent.trace_id
            random = parent.trace_flags.random_trace_id
        if self.inline:  # always on; parent-based: a child samples as its parent did (remote or local)
            sampled = recording = parent is None or self.inline == _ALWAYS_ON or parent.trace_flags.sampled
            trace_state = parent.trace_state if parent is not None else None
            own = attributes
        else:
            result = self.sampler.should_sample(context, trace_id, name, kind, {**base, **attributes}, ())
            decision: Any = result.decision  # the SDK's Decision methods are untyped
            sampled, recording = decision.is_sampled(), decision.is_recording()
            trace_state, own, base = result.trace_state, dict(result.attributes), NO_ATTRIBUTES
        span_context = _sdk.span_context(trace_id, self.ids.generate_span_id(), _sdk.flags[sampled, random],
                                         trace_state)
        if not recording:
            return LiveSpan(name, span_context, parent, kind, NO_ATTRIBUTES, {}, None, 0)
        return LiveSpan(name, span_context, parent, kind, base, own, self.recorder,
                        start_time if start_time is not None else time_ns())

_ALWAYS_ON, _PARENT_BASED = 1, 2
_DEFAULT_PARENT_BASED = ("ParentBased{root:AlwaysOnSampler,remoteParentSampled:AlwaysOnSampler,"
                         "remoteParentNotSampled:AlwaysOffSampler,localParentSampled:AlwaysOnSampler,"
                         "localParentNotSampled:AlwaysOffSampler}")


def _inline_sampler(sampler: Sampler) -> int:
    """:data:`_ALWAYS_ON`, :data:`_PARENT_BASED` (with always-on root and parents' decisions: the SDK default) or 0."""
    from opentelemetry.sdk.trace.sampling import ParentBased, StaticSampler

    description = sampler.get_description()
    if type(sampler) is StaticSampler and description == "AlwaysOnSampler":
        return _ALWAYS_ON
    if type(sampler) is ParentBased and description == _DEFAULT_PARENT_BASED:
        return _PARENT_BASED
    return 0


class _Recorder:
    """What a span needs at its end: the resource, scope and limits, and the processors to hand it to."""

    __slots__ = ("count_limit", "length_limit", "on_end", "resource", "scope")

    def __init__(self, resource: Resource, scope: InstrumentationScope, limits: SpanLimits,
                 processors: Sequence[Any]) -> None:
        self.resource, self.scope = resource, scope
        self.count_limit: int | None = limits.max_span_attributes
        self.length_limit: int | None = limits.max_span_attribute_length
        ends = tuple(p.on_end for p in processors)
        self.on_end: Callable[[ReadableSpan], None] = ends[0] if len(ends) == 1 else _each(ends)

    def fits(self, count: int) -> bool:
        """Whether ``count`` attributes are within the limits as they are (no length limit, count within)."""
        return self.length_limit is None and (self.count_limit is None or count <= self.count_limit)

    def attributes(self, attributes: dict[str, Any]) -> Mapping[str, Any]:
        """``attributes`` as the span keeps them: past a limit, the SDK's bounded (truncated, counted) copy."""
        if self.fits(len(attributes)):
            return attributes
        bounded: Mapping[str, Any] = _sdk.BoundedAttributes(self.count_limit, attributes, immutable=True,
                                                            max_value_len=self.length_limit)
        return bounded


def _each(ends: tuple[Callable[[ReadableSpan], None], ...]) -> Callable[[ReadableSpan], None]:
    def on_end(span: ReadableSpan) -> None:
        for end in ends:
            end(span)
    return on_end


class LiveSpan:
    """A span in progress: its context (for propagation and children), its attributes, and :meth:`end`. A span
    the sampler dropped (no recorder) records nothing and is not exported; its context still propagates.

    Its attributes are ``base`` (constant, shared by the spans of one endpoint or served entity) followed by
    ``attributes`` (its own), as ``{**base, **attributes}``. Ended, it goes to the processors as it is (the batch
    processor reads ``context``); in the exporter's thread (:class:`FinishingExporter`) the OTLP encoder reads it
    as it is (:meth:`exported`), any other exporter gets the SDK's ``ReadableSpan`` (:meth:`finished`)."""

    __slots__ = ("_context", "_ended", "_recorder", "attributes", "base", "context", "end_time", "kind", "name",
                 "parent", "start_time", "status")

    def __init__(self, name: str, context: SpanContext, parent: SpanContext | None, kind: SpanKind,
                 base: Mapping[str, Any], attributes: dict[str, Any], recorder: _Recorder | None,
                 start_time: int) -> None:
        self.name, self.context, self.parent, self.kind = name, context, parent, kind
        self.base, self.attributes, self._recorder, self.start_time = base, attributes, recorder, start_time
        self.status: Any = _sdk.UNSET
        self.end_time: int | None = None
        self._context: Context | None = None
        self._ended: _Recorder | None = None

    def is_recording(self) -> bool:
        return self._recorder is not None

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        if self._recorder is not None:
            self.attributes.update(attributes)

    def set_error(self, message: str | None) -> None:
        if self._recorder is not None:
            self.status = _sdk.Status(_sdk.ERROR, message)

    def in_context(self) -> Context:
        """The current context with this span in it (made once): the parent context of a child, the context a
        propagator reads."""
        if self._context is None:
            self._context = _sdk.set_span_in_context(_sdk.NonRecordingSpan(self.context))
        return self._context

    def end(self, end_time: int | None = None) -> None:
        """Hand the finished span to the processors (once: a second end does nothing; nothing changes it after)."""
        recorder = self._recorder
        if recorder is None:
            return
        self._recorder = None
        self._ended = recorder
        self.end_time = end_time if end_time is not None else time_ns()
        recorder.on_end(self)  # type: ignore[arg-type]  # read as a ReadableSpan only through finished()

    def exported(self) -> tuple[Resource, InstrumentationScope, Mapping[str, Any], dict[str, Any]] | None:
        """What the OTLP encoder writes of this ended span besides its fields: the resource, the scope, the base
        and own attributes; None when its attributes go past a span limit (then :meth:`finished` bounds them)."""
        recorder = self._ended
        if recorder is None:
            raise RuntimeError("the span has not ended")
        if not recorder.fits(len(self.base) + len(self.attributes)):
            return None
        return recorder.resource, recorder.scope, self.base, self.attributes

    def finished(self) -> ReadableSpan:
        """The SDK's ``ReadableSpan`` of this ended span."""
        recorder = self._ended
        if recorder is None:
            raise RuntimeError("the span has not ended")
        merged = {**self.base, **self.attributes} if self.base else self.attributes
        attributes = recorder.attributes(merged)
        kind = _sdk.FinishedSpan if attributes is merged else _sdk.ReadableSpan  # (past a limit: drops)
        span: ReadableSpan = kind(self.name, self.context, self.parent, recorder.resource, attributes, (), (),
                                  self.kind, None, self.status, self.start_time, self.end_time, recorder.scope)
        return span


class FinishingExporter:
    """A span exporter in front of ``exporter`` (the SDK's OTLP or console one): the processor's batch of
    :class:`LiveSpan` s becomes their ``ReadableSpan`` s, in the processor's thread; with ``live`` (the OTLP
    exporter, its encoding :mod:`modelgate_proxy.otlp_encoding`, which reads a :class:`LiveSpan` as it is) the
    batch goes through unchanged."""

    def __init__(self, exporter: Any, live: bool = False) -> None:
        self.exporter, self.live = exporter, live

    def export(self, spans: Sequence[Any]) -> Any:
        if self.live:
            return self.exporter.export(spans)
        return self.exporter.export([span.finished() if type(span) is LiveSpan else span for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.exporter.force_flush(timeout_millis))


def batch_span_processor(exporter: Any) -> Any:
    """The SDK's ``BatchSpanProcessor`` of ``exporter`` (``OTEL_BSP_*``, its thread, batches, bound and drops,
    shutdown and flush all the SDK's), whose ``on_end`` queues a sampled span in one step while the queue has
    room: the SDK's own ``on_end`` reads the process id on every span (a system call, to notice a fork) and goes
    through three calls. A full queue, a processor shut down, a forked child (told by ``os.register_at_fork``,
    not a process-id read per span) or an SDK whose processor is not laid out as this expects: the SDK's own."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    class Processor(BatchSpanProcessor):
        def __init__(self, span_exporter: Any) -> None:
            super().__init__(span_exporter)
            batch: Any = getattr(self, "_batch_processor", None)
            queue: Any = getattr(batch, "_queue", None)
            self._fast = (type(queue) is deque and queue.maxlen is not None
                          and all(hasattr(batch, name) for name in _LAYOUT))
            if self._fast:
                self._batch, self._queue = batch, queue
                self._room, self._full = queue.maxlen, batch._max_export_batch_size
                if hasattr(os, "register_at_fork"):
                    forked = weakref.WeakMethod(self._forked)
                    os.register_at_fork(after_in_child=lambda: (method := forked()) and method())

        def _forked(self) -> None:
            self._fast = False

        def on_end(self, span: Any) -> None:
            if self._fast:
                if not span.context.trace_flags & 1:  # as the SDK's: unsampled spans are not exported
                    return
                queue, batch = self._queue, self._batch
                if len(queue) < self._room and not batch._shutdown:
                    queue.appendleft(span)  # as the SDK's emit: newest on the left
                    if len(queue) >= self._full and not batch._worker_awaken.is_set():
                        batch._worker_awaken.set()
                    return
            super().on_end(span)

    return Processor(exporter)


_LAYOUT = ("_shutdown", "_worker_awaken", "_max_export_batch_size", "emit")
"""What :func:`batch_span_processor`'s ``on_end`` reads of the SDK's batch processor."""
