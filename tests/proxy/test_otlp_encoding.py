"""The faster OTLP encoding (modelgate_proxy.otlp_encoding) builds the same ExportTraceServiceRequest as the
exporter library's own ``encode_spans``, for spans like the proxy's and for what it leaves to the library; and the
OTLP/HTTP exporter uses it once installed."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library_encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from modelgate_proxy import otlp_encoding
from modelgate_proxy.trace_spans import FinishingExporter, SpanFactory

from .kept_spans import Counting, Keep


def finished_spans(*, odd: bool = False, extra: dict[str, Any] | None = None) -> list[ReadableSpan]:
    keep = Keep()
    provider = TracerProvider(resource=Resource.create({"service.name": "t", "deployment.count": 3}))
    provider.add_span_processor(SimpleSpanProcessor(keep))
    tracer = provider.get_tracer("modelgate_proxy", "1.2", schema_url="https://opentelemetry.io/schemas/1.30.0")
    remote = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, is_remote=True,
                         trace_flags=TraceFlags(1), trace_state=TraceState([("vendor", "v1")]))
    server = tracer.start_span("chat ep", context=set_span_in_context(NonRecordingSpan(remote)),
                               kind=SpanKind.SERVER, attributes={"gen_ai.operation.name": "chat",
                                                                 "gen_ai.request.stream": False})
    client = tracer.start_span("chat gpt", context=set_span_in_context(server), kind=SpanKind.CLIENT,
                               attributes={"gen_ai.request.temperature": 0.5, "modelgate.attempt": 1})
    client.set_attributes({"gen_ai.response.finish_reasons": ["stop", "length"], "server.port": 443,
                           "gen_ai.usage.input_tokens": -2, "empty": ()})
    client.set_status(Status(StatusCode.ERROR, "upstream said no"))
    if extra:  # set as they are (the SDK's checks would drop what the fast path must leave to the library)
        client._attributes._dict.update(extra)  # type: ignore[attr-defined]
    client.end()
    server.set_status(Status(StatusCode.OK))
    if odd:  # things the fast path leaves to the library
        server.add_event("retry", {"n": 1})
        server.set_attribute("bytes", b"\x00\x01")
        server.set_attribute("huge", 2**70)
    server.end()
    root = tracer.start_span("root")
    root.end()
    return keep.spans


def parsed(data: bytes) -> ExportTraceServiceRequest:
    message = ExportTraceServiceRequest()
    message.ParseFromString(data)
    return message


def test_encoding_equals_the_librarys_for_the_proxys_spans() -> None:
    spans = finished_spans()
    ours, theirs = parsed(otlp_encoding._encode(spans)), library_encode_spans(spans)  # the fast path, no fallback
    assert len(ours.resource_spans[0].scope_spans[0].spans) == 3
    client = ours.resource_spans[0].scope_spans[0].spans[0]
    assert client.status.message == "upstream said no"
    assert client.kind == 3  # SPAN_KIND_CLIENT
    assert ours == theirs
    assert ours.SerializeToString(deterministic=True) == theirs.SerializeToString(deterministic=True)
    again = parsed(otlp_encoding.encode_spans(spans).SerializePartialToString())  # now from the attribute cache
    assert again == theirs


@pytest.mark.parametrize("value", [0, -1, -(2**63), 2**63 - 1, 0.0, -0.0, float("inf"), "", "é\u2603", True, False,
                                   (), ("a", ""), (1, -2), (0.5, True), [3, 4]])
def test_each_attribute_value_encodes_as_the_librarys(value: object) -> None:
    spans = finished_spans(extra={"v": value, "w": value})
    assert parsed(otlp_encoding._encode(spans)) == library_encode_spans(spans)


def test_the_attribute_cache_is_bounded() -> None:
    client = finished_spans()[0]
    for n in range(otlp_encoding._CACHE_BOUND + 10):
        client._attributes = {"gen_ai.response.id": f"id-{n}"}
        otlp_encoding._span(client)
        assert len(otlp_encoding._KEY_VALUES) <= otlp_encoding._CACHE_BOUND
    assert len(otlp_encoding._KEY_VALUES) >= 10


def test_what_the_fast_path_does_not_handle_goes_to_the_library() -> None:
    spans = finished_spans(odd=True)
    with pytest.raises((otlp_encoding._Unhandled, ValueError)):
        otlp_encoding._encode(spans)
    ours = otlp_encoding.encode_spans(spans)
    assert ours == library_encode_spans(spans)
    assert ours.resource_spans[0].scope_spans[0].spans[1].events[0].name == "retry"
    for odd in ({"big": 2**63}, {"nested": ((1,),)}, {"none": None}):
        spans = finished_spans(extra=odd)
        with pytest.raises(otlp_encoding._Unhandled):
            otlp_encoding._encode(spans)
        assert otlp_encoding.encode_spans(spans) == library_encode_spans(spans)


def test_install_makes_the_http_exporter_use_it() -> None:
    from opentelemetry.exporter.otlp.proto.http import trace_exporter

    otlp_encoding.install()
    assert trace_exporter.encode_spans is otlp_encoding.encode_spans  # type: ignore[attr-defined]



BASE = MappingProxyType({"gen_ai.operation.name": "chat", "gen_ai.request.model": "ep", "gen_ai.request.stream": False})
LONG = "x" * 300


def live_spans(limits: SpanLimits | None = None, *, again: bool = False) -> list[Any]:
    """The proxy's ended spans as the OTLP exporter gets them (FinishingExporter with ``live``): a server span
    with base attributes under a remote parent with a trace state, a client span (base, own, an error, a long
    value and key), a span that sets a base attribute again (``again``), a span without base attributes and its
    child (no trace state)."""
    keep = Keep()
    factory = SpanFactory(ParentBased(ALWAYS_ON), Counting(0x2000), Resource.create({"service.name": "t"}),
                          InstrumentationScope("modelgate_proxy"), limits or SpanLimits(),
                          [SimpleSpanProcessor(FinishingExporter(keep, live=True))])  # type: ignore[arg-type]
    otlp_encoding.unset_status(factory.unset_status)
    remote = SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, is_remote=True,
                         trace_flags=TraceFlags(1), trace_state=TraceState([("vendor", "v1")]))
    server = factory.start("chat ep", None, remote, SpanKind.SERVER, {}, 10, BASE)
    client = factory.start("chat gpt", None, server.context, SpanKind.CLIENT, {"modelgate.attempt": 1}, 11,
                           MappingProxyType({"gen_ai.provider.name": "openai", "server.port": 443}))
    client.set_attributes({"gen_ai.response.id": f"id-{LONG}", LONG: "v", "gen_ai.usage.input_tokens": 7,
                           "gen_ai.response.finish_reasons": ("stop",), "gen_ai.request.temperature": 0.5})
    client.set_error("upstream said no")
    client.end(12)
    server.set_attributes({"http.response.status_code": 200, "modelgate.request_id": "r-1"})
    if again:
        server.set_attributes({"gen_ai.request.model": "changed"})
    server.end(13)
    plain = factory.start("chat plain", None, None, SpanKind.SERVER, {"a": "b"}, 14)
    child = factory.start("chat child", None, plain.context, SpanKind.CLIENT, {"k": True}, 15, BASE)
    child.end(16)
    plain.end(17)
    return keep.spans


@pytest.mark.parametrize("again", [False, True])
def test_the_proxys_spans_encode_as_the_library_encodes_their_readable_spans(again: bool) -> None:
    spans = live_spans(again=again)
    assert all(not isinstance(span, ReadableSpan) for span in spans)  # as they are, no ReadableSpan made
    readable = [span.finished() for span in spans]
    theirs = library_encode_spans(readable)
    data = otlp_encoding._encode(spans)  # the fast path (no fallback)
    assert parsed(data) == theirs
    assert data == theirs.SerializeToString(deterministic=True)
    server = theirs.resource_spans[0].scope_spans[0].spans[1]
    assert [kv.key for kv in server.attributes][:3] == list(BASE)  # base first, then the span's own
    assert dict((kv.key, kv.value.string_value) for kv in server.attributes)["gen_ai.request.model"] == \
        ("changed" if again else "ep")
    assert otlp_encoding._encode(spans) == data  # again, from the caches


@pytest.mark.parametrize("limits", [SpanLimits(max_span_attributes=3), SpanLimits(max_attribute_length=2),
                                    SpanLimits(max_span_attributes=2, max_span_attribute_length=1)])
def test_the_proxys_spans_past_a_limit_are_bounded_as_the_sdk_bounds_them(limits: SpanLimits) -> None:
    spans = live_spans(limits)
    readable = [span.finished() for span in spans]
    assert any(span.dropped_attributes for span in readable) or limits.max_span_attribute_length is not None
    assert parsed(otlp_encoding._encode(spans)) == library_encode_spans(readable)
    assert otlp_encoding.encode_spans(spans).SerializePartialToString() == \
        library_encode_spans(readable).SerializeToString(deterministic=True)


def test_what_the_fast_path_does_not_handle_of_the_proxys_spans_goes_to_the_library() -> None:
    spans = live_spans()
    spans[0].attributes["huge"] = 2**70
    with pytest.raises(otlp_encoding._Unhandled):
        otlp_encoding._encode(spans)
    assert otlp_encoding.encode_spans(spans) == library_encode_spans([span.finished() for span in spans])


def test_a_base_is_encoded_once_and_the_cache_is_bounded() -> None:
    spans = live_spans()
    otlp_encoding._encode(spans)
    entry = otlp_encoding._BASES[id(BASE)]
    otlp_encoding._encode(spans)
    assert otlp_encoding._BASES[id(BASE)] is entry
    for n in range(otlp_encoding._BASES_BOUND + 10):
        otlp_encoding._base(MappingProxyType({"n": n}))
        assert len(otlp_encoding._BASES) <= otlp_encoding._BASES_BOUND


def test_a_key_whose_values_do_not_repeat_stops_filling_the_cache() -> None:
    otlp_encoding._KEY_VALUES.clear()
    otlp_encoding._KEPT.clear()
    client = finished_spans()[0]
    for n in range(otlp_encoding._VOLATILE * 3):
        client._attributes = {"gen_ai.response.id": f"id-{n}", "gen_ai.operation.name": "chat"}
        assert parsed(otlp_encoding._encode([client])) == library_encode_spans([client])
    kept = [key for key in otlp_encoding._KEY_VALUES if key[0] == "gen_ai.response.id"]
    assert len(kept) == otlp_encoding._VOLATILE
    assert ("gen_ai.operation.name", str, "chat") in otlp_encoding._KEY_VALUES  # what repeats stays


def test_a_batch_is_encoded_in_slices_with_the_gil_let_go_between(monkeypatch: pytest.MonkeyPatch) -> None:
    """The exporter's thread never encodes more than SLICE spans without a sleep (which lets the GIL go), so the
    event loop waits at most a slice's encoding for it, not a whole batch's (docs/tracing.md, "Cost"); the bytes
    are the same as without the pauses."""
    spans = live_spans() * (otlp_encoding.SLICE // 2 + 3)  # more than two slices, not a whole number of them
    unpaused = otlp_encoding._encode(spans[:otlp_encoding.SLICE])
    runs, encoded, sleeps = [], [0], []
    encode_one = otlp_encoding._live_span

    def counted(*args: Any) -> bytes:
        encoded[0] += 1
        return encode_one(*args)

    def pause() -> None:
        runs.append(encoded[0])
        encoded[0] = 0

    monkeypatch.setattr(otlp_encoding, "_live_span", counted)
    monkeypatch.setattr(otlp_encoding, "pause", pause)
    data = otlp_encoding._encode(spans)
    runs.append(encoded[0])
    assert sum(runs) == len(spans)
    assert max(runs) <= otlp_encoding.SLICE
    assert len(runs) == -(-len(spans) // otlp_encoding.SLICE)
    assert otlp_encoding._encode(spans[:otlp_encoding.SLICE]) == unpaused  # a slice: no pause
    assert len(runs) == -(-len(spans) // otlp_encoding.SLICE)
    monkeypatch.undo()
    assert otlp_encoding._encode(spans) == data
    assert parsed(data) == library_encode_spans([span.finished() for span in spans])

    monkeypatch.setattr(otlp_encoding.time, "sleep", sleeps.append)
    otlp_encoding.pause()
    assert sleeps == [otlp_encoding.PAUSE]
    assert otlp_encoding.PAUSE > 0  # a real sleep, not sleep(0)
