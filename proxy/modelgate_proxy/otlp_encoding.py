"""A faster OTLP encoding of a batch of finished spans, for the OTLP/HTTP exporter's thread (docs/tracing.md).

The exporter's own ``encode_spans`` (opentelemetry-exporter-otlp-proto-common) builds every protobuf message from
keyword arguments, and each nesting step copies what it is given: a batch's spans are copied three times on their
way into the request, every attribute twice, and the resource is hashed (through ``json.dumps``) once per span.
That was about 75 µs of the exporter thread's CPU per span, the largest part of what tracing cost per request.
:func:`encode_spans` builds the same ``ExportTraceServiceRequest`` (the official opentelemetry-proto classes, in
place with ``add()``, nothing copied): about 17 µs per span. Anything it does not handle itself (span events,
links, attribute values other than scalars and sequences of scalars, a value protobuf refuses) goes to the
library's encoder for the whole batch, so the output is the library's in every case (tests/proxy/test_otlp_encoding.py
compares the two).

:func:`install` makes the OTLP/HTTP span exporter use it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.sdk.trace import ReadableSpan

_HAS_IS_REMOTE = 0x100  # SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE = 0x200  # SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK


class _Unhandled(Exception):
    """Something :func:`encode_spans` leaves to the library's encoder."""


def install() -> None:
    """Make ``OTLPSpanExporter.export`` encode with :func:`encode_spans` (it calls its module's ``encode_spans``)."""
    from opentelemetry.exporter.otlp.proto.http import trace_exporter

    if not hasattr(trace_exporter, "encode_spans"):  # pragma: no cover - a library change; the test says so
        logging.getLogger(__name__).warning(
            "opentelemetry-exporter-otlp-proto-http no longer calls trace_exporter.encode_spans: spans are encoded "
            "by the library's own (slower) encoder")
        return
    trace_exporter.encode_spans = encode_spans


def encode_spans(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """The ``ExportTraceServiceRequest`` of ``spans``, equal to the library's ``encode_spans(spans)``."""
    try:
        return _encode(spans)
    except (_Unhandled, ValueError, TypeError, OverflowError):
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library_encode_spans

        return library_encode_spans(spans)


def _encode(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    request = ExportTraceServiceRequest()
    groups: dict[int, tuple[Any, dict[int, Any]]] = {}  # id(resource) -> (ResourceSpans, id(scope) -> ScopeSpans)
    for span in spans:
        if span.events or span.links:
            raise _Unhandled
        resource = span.resource
        group = groups.get(id(resource))
        if group is None:
            resource_spans = request.resource_spans.add()
            _set_attributes(resource_spans.resource.attributes, resource.attributes)
            if resource.schema_url:
                resource_spans.schema_url = resource.schema_url
            resource_spans.resource.SetInParent()
            group = groups[id(resource)] = (resource_spans, {})
        scope = span.instrumentation_scope
        scope_spans = group[1].get(id(scope))
        if scope_spans is None:
            scope_spans = group[1][id(scope)] = group[0].scope_spans.add()
            scope_spans.scope.SetInParent()
            if scope is not None:
                scope_spans.scope.name = scope.name
                if scope.version:
                    scope_spans.scope.version = scope.version
                _set_attributes(scope_spans.scope.attributes, scope.attributes)
                if scope.schema_url:
                    scope_spans.schema_url = scope.schema_url
        _set_span(scope_spans.spans.add(), span)
    return request


def _set_span(out: Any, span: ReadableSpan) -> None:
    context = span.get_span_context()
    if context is None:
        raise _Unhandled
    out.trace_id = context.trace_id.to_bytes(16, "big")
    out.span_id = context.span_id.to_bytes(8, "big")
    if context.trace_state:
        out.trace_state = ",".join(f"{key}={value}" for key, value in context.trace_state.items())
    parent = span.parent
    flags = _HAS_IS_REMOTE
    if parent:
        out.parent_span_id = parent.span_id.to_bytes(8, "big")
        if parent.is_remote:
            flags |= _IS_REMOTE
    out.flags = flags
    out.name = span.name
    out.kind = span.kind.value + 1  # SpanKind INTERNAL..CONSUMER = 0..4, SPAN_KIND_INTERNAL..CONSUMER = 1..5
    if span.start_time is not None:
        out.start_time_unix_nano = span.start_time
    if span.end_time is not None:
        out.end_time_unix_nano = span.end_time
    _set_attributes(out.attributes, span.attributes)
    status = span.status
    if status.status_code.value:
        out.status.code = status.status_code.value
    else:
        out.status.SetInParent()
    if status.description is not None:
        out.status.message = status.description
    if span.dropped_attributes:
        out.dropped_attributes_count = span.dropped_attributes
    if span.dropped_events:
        out.dropped_events_count = span.dropped_events
    if span.dropped_links:
        out.dropped_links_count = span.dropped_links


def _set_attributes(out: Any, attributes: Mapping[str, Any] | None) -> None:
    if not attributes:
        return
    add = out.add
    for key, value in attributes.items():
        item: KeyValue = add()
        item.key = key
        _set_value(item.value, value)


def _set_value(out: AnyValue, value: Any) -> None:
    kind = type(value)
    if kind is str:
        out.string_value = value
    elif kind is bool:
        out.bool_value = value
    elif kind is int:
        out.int_value = value
    elif kind is float:
        out.double_value = value
    elif kind is tuple or kind is list:
        values = out.array_value.values
        values_add = values.add
        for element in value:
            if type(element) in (tuple, list, dict):
                raise _Unhandled
            _set_value(values_add(), element)
        if not value:
            out.array_value.SetInParent()
    else:  # None, bytes, mappings, subclasses: the library's way
        raise _Unhandled
