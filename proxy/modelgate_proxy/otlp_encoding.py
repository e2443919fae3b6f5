"""A faster OTLP encoding of a batch of finished spans, for the OTLP/HTTP exporter's thread (docs/tracing.md).

The exporter's own ``encode_spans`` (opentelemetry-exporter-otlp-proto-common) builds every protobuf message from
keyword arguments, and each nesting step copies what it is given: a batch's spans are copied three times on their
way into the request, every attribute twice, and the resource is hashed (through ``json.dumps``) once per span:
about 75 µs of the exporter thread's CPU per span. Building the same messages in place with the opentelemetry-proto
classes still cost about 25 µs per span, most of it one call into protobuf per attribute field.

:func:`encode_spans` writes the request's protobuf wire format itself (the OTLP ``trace.proto`` field numbers
below): a span's attributes repeat from request to request (the endpoint, the model, the provider, the status), so
each attribute's encoded ``KeyValue`` is kept in a bounded cache and a span costs a few µs. What it does not write
itself (span events, links, attribute values other than ``str``, ``bool``, ``int`` within int64, ``float`` and flat
sequences of those) goes to the library's encoder for the whole batch. tests/proxy/test_otlp_encoding.py parses
what it writes with the opentelemetry-proto classes and compares it with the library's request.

:func:`install` makes the OTLP/HTTP span exporter use it (the exporter calls ``encode_spans(spans)
.SerializePartialToString()``; here that returns the bytes already written).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

_HAS_IS_REMOTE = 0x100  # SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE = 0x200  # SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
_INT64 = 1 << 63

_CACHE_BOUND = 4096
"""Encoded attributes kept (a response id differs per request: the cache is emptied when full)."""
_KEY_VALUES: dict[tuple[str, type, Any], bytes] = {}
_NAMES: dict[str, bytes] = {}

_KINDS = tuple(bytes((0x30, kind + 1)) for kind in range(5))
"""6 kind: SpanKind INTERNAL..CONSUMER = 0..4, SPAN_KIND_INTERNAL..CONSUMER = 1..5."""
_FLAGS = {flags: b"\x85\x01" + flags.to_bytes(4, "little") for flags in (_HAS_IS_REMOTE, _HAS_IS_REMOTE | _IS_REMOTE)}
"""16 flags (fixed32)."""
_pack_double = struct.Struct("<d").pack
_pack_fixed64 = struct.Struct("<Q").pack


class _Unhandled(Exception):
    """Something :func:`encode_spans` leaves to the library's encoder."""


class Encoded:
    """A request already in wire format, with the one method of a protobuf message the exporter calls."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def SerializePartialToString(self) -> bytes:
        return self.data

    SerializeToString = SerializePartialToString


def install() -> None:
    """Make ``OTLPSpanExporter.export`` encode with :func:`encode_spans` (it calls its module's ``encode_spans``)."""
    from opentelemetry.exporter.otlp.proto.http import trace_exporter

    if not hasattr(trace_exporter, "encode_spans"):  # pragma: no cover - a library change; the test says so
        logging.getLogger(__name__).warning(
            "opentelemetry-exporter-otlp-proto-http no longer calls trace_exporter.encode_spans: spans are encoded "
            "by the library's own (slower) encoder")
        return
    trace_exporter.encode_spans = encode_spans


def encode_spans(spans: Sequence[ReadableSpan]) -> Any:
    """The ``ExportTraceServiceRequest`` of ``spans`` (:class:`Encoded`, or the library's message), the same
    request as the library's ``encode_spans(spans)``."""
    try:
        return Encoded(_encode(spans))
    except (_Unhandled, ValueError, TypeError, OverflowError, UnicodeEncodeError):
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library_encode_spans

        return library_encode_spans(spans)


def _encode(spans: Sequence[ReadableSpan]) -> bytes:
    """``ExportTraceServiceRequest``: 1 resource_spans (ResourceSpans: 1 resource, 2 scope_spans, 3 schema_url;
    ScopeSpans: 1 scope, 2 spans, 3 schema_url)."""
    groups: dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]] = {}  # id(resource) -> scopes
    for span in spans:
        if span.events or span.links or span.dropped_events or span.dropped_links:
            raise _Unhandled
        resource = span.resource
        group = groups.get(id(resource))
        if group is None:
            group = groups[id(resource)] = (resource, {})
        scope = span.instrumentation_scope
        scoped = group[1].get(id(scope))
        if scoped is None:
            scoped = group[1][id(scope)] = (scope, [])
        scoped[1].append(_span(span))
    out: list[bytes] = []
    for resource, scopes in groups.values():
        body = [_field(1, _resource(resource))]
        for scope, encoded in scopes.values():
            scope_body = [_field(1, _scope(scope))]
            scope_body.extend(encoded)
            if scope is not None and scope.schema_url:
                scope_body.append(_field(3, scope.schema_url.encode()))
            body.append(_field(2, b"".join(scope_body)))
        if resource.schema_url:
            body.append(_field(3, resource.schema_url.encode()))
        out.append(_field(1, b"".join(body)))
    return b"".join(out)


def _resource(resource: Any) -> bytes:
    """``Resource``: 1 attributes."""
    return _attributes(1, resource.attributes)


def _scope(scope: Any) -> bytes:
    """``InstrumentationScope``: 1 name, 2 version, 3 attributes."""
    if scope is None:
        return b""
    out = _field(1, scope.name.encode()) if scope.name else b""
    if scope.version:
        out += _field(2, scope.version.encode())
    return out + _attributes(3, scope.attributes)


def _attributes(number: int, attributes: Mapping[str, Any] | None) -> bytes:
    return b"".join(_field(number, _key_value(key, value)) for key, value in (attributes or {}).items())


def _span(span: ReadableSpan) -> bytes:
    """``ScopeSpans.spans`` (field 2) of one ``Span``: 1 trace_id, 2 span_id, 3 trace_state, 4 parent_span_id,
    5 name, 6 kind, 7 start, 8 end (fixed64), 9 attributes, 10/12/14 dropped counts, 15 status, 16 flags
    (fixed32)."""
    context = span.get_span_context()
    if context is None:
        raise _Unhandled
    parts = [b"\x0a\x10" + context.trace_id.to_bytes(16, "big") + b"\x12\x08" + context.span_id.to_bytes(8, "big")]
    if context.trace_state:
        parts.append(_field(3, ",".join(f"{key}={value}" for key, value in context.trace_state.items()).encode()))
    parent = span.parent
    flags = _HAS_IS_REMOTE
    if parent:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
        if parent.is_remote:
            flags |= _IS_REMOTE
    name = _NAMES.get(span.name)
    if name is None:
        name = _field(5, span.name.encode()) if span.name else b""
        if len(_NAMES) >= _CACHE_BOUND:
            _NAMES.clear()
        _NAMES[span.name] = name
    parts.append(name)
    parts.append(_KINDS[span.kind.value])
    if span.start_time:
        parts.append(b"\x39" + _pack_fixed64(span.start_time))
    if span.end_time:
        parts.append(b"\x41" + _pack_fixed64(span.end_time))
    attributes = span.attributes
    if attributes:
        get = _KEY_VALUES.get
        try:  # each attribute's KeyValue from the cache, by key, exact type and value
            encoded = [get((key, type(value), value)) for key, value in attributes.items()]
        except TypeError:  # an unhashable value (a list): one at a time
            encoded = [_cached(key, value) for key, value in attributes.items()]
        if None in encoded:
            encoded = [item if item is not None else _attribute(key, value)
                       for item, (key, value) in zip(encoded, attributes.items(), strict=True)]
        parts.extend(encoded)  # type: ignore[arg-type]  # (no None left)
    if span.dropped_attributes:
        parts.append(b"\x50")
        parts.append(_varint(span.dropped_attributes))
    status = span.status
    code = status.status_code.value
    message = status.description
    if code or message:
        status_body = _field(2, message.encode()) if message else b""
        if code:
            status_body += b"\x18" + _varint(code)
        parts.append(_field(15, status_body))
    else:
        parts.append(b"\x7a\x00")  # an empty Status, as the library sets it
    parts.append(_FLAGS[flags])
    return _field(2, b"".join(parts))


def _cached(key: str, value: Any) -> bytes | None:
    try:
        return _KEY_VALUES.get((key, type(value), value))
    except TypeError:
        return None


def _attribute(key: str, value: Any) -> bytes:
    """``Span.attributes`` (field 9) of one attribute, kept in the cache when its value is a ``str``, ``int`` or
    ``bool``, or a tuple of strings (the cache's key has the exact type: ``True`` and ``1`` differ; floats are not
    kept: ``-0.0 == 0.0``; nor lists: not hashable)."""
    encoded = _field(9, _key_value(key, value))
    kind = type(value)
    if kind is str or kind is int or kind is bool or (kind is tuple and all(type(v) is str for v in value)):
        if len(_KEY_VALUES) >= _CACHE_BOUND:
            _KEY_VALUES.clear()
        _KEY_VALUES[key, kind, value] = encoded
    return encoded


def _key_value(key: str, value: Any) -> bytes:
    """``KeyValue``: 1 key, 2 value (``AnyValue``)."""
    return (_field(1, key.encode()) if key else b"") + _field(2, _any_value(value))


def _any_value(value: Any) -> bytes:
    """``AnyValue`` (a oneof: its field is written even when zero): 1 string, 2 bool, 3 int64, 4 double,
    5 array (``ArrayValue``: 1 values)."""
    kind = type(value)
    if kind is str:
        return _field(1, value.encode())
    if kind is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if kind is int:
        if not -_INT64 <= value < _INT64:
            raise _Unhandled
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)
    if kind is float:
        return b"\x21" + _pack_double(value)
    if kind is tuple or kind is list:
        values = []
        for element in value:
            if type(element) in (tuple, list, dict):
                raise _Unhandled
            values.append(_field(1, _any_value(element)))
        return _field(5, b"".join(values))
    raise _Unhandled  # None, bytes, mappings, subclasses: the library's way


def _field(number: int, data: bytes) -> bytes:
    """A length-delimited field."""
    size = len(data)
    if size < 0x80:
        return bytes((number << 3 | 2, size)) + data if number < 16 else _varint(number << 3 | 2) + bytes((size,)) + data
    return _varint(number << 3 | 2) + _varint(size) + data


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
