"""A faster OTLP encoding of a batch of finished spans, for the OTLP/HTTP exporter's thread (docs/tracing.md).

The exporter's own ``encode_spans`` (opentelemetry-exporter-otlp-proto-common) builds every protobuf message from
keyword arguments, and each nesting step copies what it is given: a batch's spans are copied three times on their
way into the request, every attribute twice, and the resource is hashed (through ``json.dumps``) once per span:
about 75 µs of the exporter thread's CPU per span. Building the same messages in place with the opentelemetry-proto
classes still cost about 25 µs per span, most of it one call into protobuf per attribute field.

:func:`encode_spans` writes the request's protobuf wire format itself (the OTLP ``trace.proto`` field numbers
below): a span's attributes repeat from request to request (the endpoint, the model, the provider, the status), so
each attribute's encoded ``KeyValue`` is kept in a bounded cache (a key whose values do not repeat, such as a
response id, stops being kept) and a span costs a few µs. The proxy's own ended spans
(:class:`modelgate_proxy.trace_spans.LiveSpan`) are read as they are, without the SDK's ``ReadableSpan``: their
constant base attributes (made once per endpoint or served entity) are encoded once per base. What it does not write
itself (span events, links, attribute values other than ``str``, ``bool``, ``int`` within int64, ``float`` and flat
sequences of those) goes to the library's encoder for the whole batch. tests/proxy/test_otlp_encoding.py parses
what it writes with the opentelemetry-proto classes and compares it with the library's request.

:func:`install` makes the OTLP/HTTP span exporter use it (the exporter calls ``encode_spans(spans)
.SerializePartialToString()``; here that returns the bytes already written).
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

_HAS_IS_REMOTE = 0x100  # SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
_IS_REMOTE = 0x200  # SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
_INT64 = 1 << 63

_CACHE_BOUND = 4096
"""Encoded attributes kept (emptied when full)."""
_KEY_VALUES: dict[tuple[str, type, Any], bytes] = {}
"""(key, exact type, value) -> the attribute's encoded ``Span.attributes`` field."""
_KEPT: dict[str, int] = {}
"""Values kept in :data:`_KEY_VALUES` per key since it was last emptied."""
_KEY_FIELDS: dict[str, bytes] = {}
"""An attribute key -> its encoded ``KeyValue.key`` field."""
_VOLATILE = 256
"""A key with that many values kept is not given more (its values are per request, such as a response id: they
would empty the cache of the ones that repeat)."""
_NAMES: dict[str, bytes] = {}
_BASES_BOUND = 1024
_BASES: dict[int, tuple[Mapping[str, Any], bytes, frozenset[str]]] = {}
"""id(base attributes) -> the base, its encoded attributes and keys (a base is made once per endpoint or served
entity: configuration; bounded)."""

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


def install() -> bool:
    """Make ``OTLPSpanExporter.export`` encode with :func:`encode_spans` (it calls its module's ``encode_spans``);
    whether it does (then the exporter may be given the proxy's ended spans as they are)."""
    from opentelemetry.exporter.otlp.proto.http import trace_exporter

    if not hasattr(trace_exporter, "encode_spans"):  # pragma: no cover - a library change; the test says so
        logging.getLogger(__name__).warning(
            "opentelemetry-exporter-otlp-proto-http no longer calls trace_exporter.encode_spans: spans are encoded "
            "by the library's own (slower) encoder")
        return False
    trace_exporter.encode_spans = encode_spans
    return True


def encode_spans(spans: Sequence[Any]) -> Any:
    """The ``ExportTraceServiceRequest`` of ``spans`` (:class:`Encoded`, or the library's message), the same
    request as the library's ``encode_spans(spans)``. A span is the SDK's ``ReadableSpan`` or the proxy's ended
    span (:class:`modelgate_proxy.trace_spans.LiveSpan`: it has ``exported()`` and ``finished()``)."""
    try:
        return Encoded(_encode(spans))
    except (_Unhandled, ValueError, TypeError, OverflowError, UnicodeEncodeError):
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library_encode_spans

        return library_encode_spans([span.finished() if hasattr(span, "exported") else span for span in spans])


SLICE, PAUSE = 32, 0.0001
"""Spans :func:`_encode` encodes between two pauses (a few hundred µs of CPU), and the pause in seconds."""


def pause() -> None:
    """Let go of the GIL (a sleep: after ``sleep(0)`` the thread takes it straight back), so the event loop does not
    wait out the 5 ms switch interval behind a whole batch's encoding (docs/tracing.md, "Cost")."""
    time.sleep(PAUSE)


def _encode(spans: Sequence[Any]) -> bytes:
    """``ExportTraceServiceRequest``: 1 resource_spans (ResourceSpans: 1 resource, 2 scope_spans, 3 schema_url;
    ScopeSpans: 1 scope, 2 spans, 3 schema_url). Pauses (:func:`pause`) after each :data:`SLICE` spans."""
    groups: dict[int, tuple[Any, dict[int, tuple[Any, list[bytes]]]]] = {}  # id(resource) -> scopes
    for index, span in enumerate(spans):
        if index and not index % SLICE:
            pause()
        exported = getattr(span, "exported", None)
        parts = exported() if exported is not None else None
        if parts is not None:  # the proxy's span as it is
            resource, scope, base, attributes = parts
            encoded = _live_span(span, base, attributes)
        else:
            if exported is not None:  # the proxy's span past a span limit: the SDK's bounded attributes
                span = span.finished()
            if span.events or span.links or span.dropped_events or span.dropped_links:
                raise _Unhandled
            resource, scope = span.resource, span.instrumentation_scope
            encoded = _span(span)
        group = groups.get(id(resource))
        if group is None:
            group = groups[id(resource)] = (resource, {})
        scoped = group[1].get(id(scope))
        if scoped is None:
            scoped = group[1][id(scope)] = (scope, [])
        scoped[1].append(encoded)
    out: list[bytes] = []
    for resource, scopes in groups.values():
        body = [_field(1, _resource(resource))]
        for scope, encoded_spans in scopes.values():
            scope_body = [_field(1, _scope(scope))]
            scope_body.extend(encoded_spans)
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
    parts, flags = _head(context, span.parent, span.name, span.kind.value, span.start_time, span.end_time)
    attributes = span.attributes
    if attributes:
        _add_attributes(parts, attributes)
    if span.dropped_attributes:
        parts.append(b"\x50")
        parts.append(_varint(span.dropped_attributes))
    return _tail(parts, span.status, flags)


def _live_span(span: Any, base: Mapping[str, Any], attributes: dict[str, Any]) -> bytes:
    """:func:`_span` of the proxy's ended span (a ``LiveSpan``: the same fields), its attributes ``base`` (encoded
    once per base: :func:`_base`) then ``attributes``, as the SDK's span has them (``{**base, **attributes}``).
    The same fields in the same order as :func:`_head` and :func:`_tail` write them, in fewer steps: the ids in
    one ``struct`` call, the times in another."""
    context, parent = span.context, span.parent
    trace_id = context.trace_id
    flags = _HAS_IS_REMOTE
    if context.trace_state or not span.start_time or not span.end_time:  # (not the proxy's: the general way)
        parts, flags = _head(context, parent, span.name, span.kind.value, span.start_time, span.end_time)
    else:
        if parent:
            ids = _pack_ids_parent(0x0A10, trace_id >> 64, trace_id & _LOW64, 0x1208, context.span_id, 0x2208,
                                   parent.span_id)
            if parent.is_remote:
                flags |= _IS_REMOTE
        else:
            ids = _pack_ids(0x0A10, trace_id >> 64, trace_id & _LOW64, 0x1208, context.span_id)
        name = _NAMES.get(span.name)
        if name is None:
            name = _name(span.name)
        parts = [ids, name, _KINDS[span.kind.value], _pack_times(0x39, span.start_time, 0x41, span.end_time)]
    if base:
        encoded, keys = _base(base)
        if attributes and not keys.isdisjoint(attributes):  # an attribute of base set again: merge them
            _add_attributes(parts, {**base, **attributes})
        else:
            parts.append(encoded)
            if attributes:
                _add_attributes(parts, attributes)
    elif attributes:
        _add_attributes(parts, attributes)
    status = span.status
    if status is _unset[0]:
        parts.append(b"\x7a\x00")
        parts.append(_FLAGS[flags])
        return _field(2, b"".join(parts))
    return _tail(parts, status, flags)


_pack_ids = struct.Struct(">HQQHQ").pack
_pack_ids_parent = struct.Struct(">HQQHQHQ").pack
_pack_times = struct.Struct("<BQBQ").pack
_LOW64 = (1 << 64) - 1
_unset: list[Any] = [None]
"""The SDK's unset ``Status`` the proxy's spans start with (set by :func:`unset_status`): its encoding is fixed."""


def unset_status(status: Any) -> None:
    """Tell the encoder which ``Status`` object is the unset one the proxy's spans share (its code 0, no
    description: an empty ``Status`` message)."""
    if status.status_code.value == 0 and not status.description:
        _unset[0] = status


def _name(name: str) -> bytes:
    encoded = _field(5, name.encode()) if name else b""
    if len(_NAMES) >= _CACHE_BOUND:
        _NAMES.clear()
    _NAMES[name] = encoded
    return encoded


def _base(base: Mapping[str, Any]) -> tuple[bytes, frozenset[str]]:
    """The encoded attributes of ``base`` and its keys, made once per base mapping (the cache keeps the mapping,
    so its ``id`` is not reused while it is in the cache; bounded)."""
    entry = _BASES.get(id(base))
    if entry is None or entry[0] is not base:
        if len(_BASES) >= _BASES_BOUND:
            _BASES.clear()
        entry = _BASES[id(base)] = (base, b"".join(_field(9, _key_value(key, value)) for key, value in base.items()),
                                    frozenset(base))
    return entry[1], entry[2]


def _head(context: Any, parent: Any, name: str, kind: int, start: int | None,
          end: int | None) -> tuple[list[bytes], int]:
    """A span's fields 1-8 and its flags (16)."""
    parts = [b"\x0a\x10" + context.trace_id.to_bytes(16, "big") + b"\x12\x08" + context.span_id.to_bytes(8, "big")]
    if context.trace_state:
        parts.append(_field(3, ",".join(f"{key}={value}" for key, value in context.trace_state.items()).encode()))
    flags = _HAS_IS_REMOTE
    if parent:
        parts.append(b"\x22\x08" + parent.span_id.to_bytes(8, "big"))
        if parent.is_remote:
            flags |= _IS_REMOTE
    encoded_name = _NAMES.get(name)
    parts.append(encoded_name if encoded_name is not None else _name(name))
    parts.append(_KINDS[kind])
    if start:
        parts.append(b"\x39" + _pack_fixed64(start))
    if end:
        parts.append(b"\x41" + _pack_fixed64(end))
    return parts, flags


def _add_attributes(parts: list[bytes], attributes: Mapping[str, Any]) -> None:
    get, add = _KEY_VALUES.get, parts.append
    for key, value in attributes.items():
        try:  # each attribute's KeyValue from the cache, by key, exact type and value
            encoded = get((key, type(value), value))
        except TypeError:  # an unhashable value (a list)
            encoded = None
        add(encoded if encoded is not None else _attribute(key, value))


def _tail(parts: list[bytes], status: Any, flags: int) -> bytes:
    """A span's status (15) and flags (16), and the span as ``ScopeSpans.spans`` (field 2)."""
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


def _attribute(key: str, value: Any) -> bytes:
    """``Span.attributes`` (field 9) of one attribute, kept in the cache when its value is a ``str``, ``int`` or
    ``bool``, or a tuple of strings (the cache's key has the exact type: ``True`` and ``1`` differ; floats are not
    kept: ``-0.0 == 0.0``; nor lists: not hashable)."""
    kind = type(value)
    encoded = _str_attribute(key, value) if kind is str else _field(9, _key_value(key, value))
    if kind is str or kind is int or kind is bool or (kind is tuple and all(type(v) is str for v in value)):
        kept = _KEPT.get(key, 0)
        if kept < _VOLATILE:  # past it, a key whose values seldom repeat (an id): not kept, encoded each time
            if len(_KEY_VALUES) >= _CACHE_BOUND or len(_KEPT) >= _CACHE_BOUND:
                _KEY_VALUES.clear()
                _KEPT.clear()
            _KEY_VALUES[key, kind, value] = encoded
            _KEPT[key] = kept + 1
    return encoded


def _str_attribute(key: str, value: str) -> bytes:
    """:func:`_attribute` of a string value, in one step when the lengths fit in one byte (the proxy's do)."""
    key_field = _KEY_FIELDS.get(key)
    if key_field is None:
        key_field = _field(1, key.encode()) if key else b""
        if len(_KEY_FIELDS) >= _CACHE_BOUND:
            _KEY_FIELDS.clear()
        _KEY_FIELDS[key] = key_field
    data = value.encode()
    size = len(data)
    total = len(key_field) + size + 4  # KeyValue: the key, then 2 value (AnyValue: 1 string)
    if total < 0x80:
        return bytes((0x4A, total)) + key_field + bytes((0x12, size + 2, 0x0A, size)) + data
    return _field(9, key_field + _field(2, _field(1, data)))


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
    if number < 16:
        if size < 0x80:
            return bytes((number << 3 | 2, size)) + data
        if size < 0x4000:
            return bytes((number << 3 | 2, size & 0x7F | 0x80, size >> 7)) + data
    elif size < 0x80:
        return _varint(number << 3 | 2) + bytes((size,)) + data
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
