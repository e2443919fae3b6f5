"""The proxy's own span (modelgate_proxy.trace_spans) against the SDK's: the same span as the SDK's tracer makes
for the same ids, sampler and attributes, as the exporter library encodes it; the sampler's decision honoured;
the SDK's span limits applied; one end only."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.propagate import inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased
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

from modelgate_proxy import traces
from modelgate_proxy.trace_spans import FinishingExporter, SpanFactory

from .kept_spans import Counting, Keep

RESOURCE = Resource.create({"service.name": "t"})
SCOPE = InstrumentationScope("modelgate_proxy")


def sdk_spans(sampler: Sampler | None = None, limits: SpanLimits | None = None) -> list[ReadableSpan]:
    """A server span with a client child and an error, made by the SDK's tracer."""
    keep = Keep()
    provider = TracerProvider(resource=RESOURCE, id_generator=Counting(), sampler=sampler, span_limits=limits)
    provider.add_span_processor(SimpleSpanProcessor(keep))
    tracer = provider.get_tracer("modelgate_proxy")
    server = tracer.start_span("chat e", kind=SpanKind.SERVER, attributes={"a": "x", "n": 1}, start_time=10)
    client = tracer.start_span("chat m", context=set_span_in_context(server), kind=SpanKind.CLIENT,
                               attributes={"gen_ai.request.model": "m"}, start_time=11)
    client.set_attributes({"gen_ai.response.finish_reasons": ["stop"], "f": 0.5, "b": True})
    client.set_status(Status(StatusCode.ERROR, "boom"))
    client.end(12)
    server.set_attributes({"http.response.status_code": 200})
    server.end(13)
    return keep.spans


def our_spans(sampler: Sampler | None = None, limits: SpanLimits | None = None) -> list[ReadableSpan]:
    keep = Keep()
    provider = TracerProvider(sampler=sampler)
    factory = SpanFactory(provider.sampler, Counting(), RESOURCE, SCOPE, limits or SpanLimits(),
                          [SimpleSpanProcessor(FinishingExporter(keep))])  # type: ignore[arg-type]
    server = factory.start("chat e", None, None, SpanKind.SERVER, {"a": "x", "n": 1}, 10)
    client = factory.start("chat m", server.in_context(), server.context, SpanKind.CLIENT,
                           {"gen_ai.request.model": "m"}, 11)
    client.set_attributes({"gen_ai.response.finish_reasons": ["stop"], "f": 0.5, "b": True})
    client.set_error("boom")
    client.end(12)
    server.set_attributes({"http.response.status_code": 200})
    server.end(13)
    server.end(14)  # a second end: nothing
    return keep.spans


def test_the_same_spans_as_the_sdk_tracer_makes() -> None:
    ours, sdk = our_spans(), sdk_spans()
    assert len(ours) == 2
    assert encode_spans(ours) == encode_spans(sdk)
    assert [s.context.trace_flags for s in ours] == [s.context.trace_flags for s in sdk] == [3, 3]


@pytest.mark.parametrize("sampler", [ALWAYS_OFF, ParentBased(TraceIdRatioBased(0.0))])
def test_a_span_the_sampler_drops_records_nothing_and_still_propagates(sampler: Sampler) -> None:
    assert our_spans(sampler) == [] == sdk_spans(sampler)
    factory = SpanFactory(sampler, Counting(), RESOURCE, SCOPE, SpanLimits(), [])
    span = factory.start("chat e", None, None, SpanKind.SERVER, {"a": "x"})
    span.set_attributes({"b": "y"})
    assert not span.is_recording()
    assert span.attributes == {}
    carrier: dict[str, Any] = {}
    inject(carrier, context=span.in_context())
    assert carrier["traceparent"] == f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-02"


def test_the_sdk_span_limits_apply() -> None:
    limits = SpanLimits(max_span_attributes=2, max_span_attribute_length=1)
    ours, sdk = our_spans(limits=limits), sdk_spans(limits=limits)
    assert encode_spans(ours) == encode_spans(sdk)
    client = ours[0]
    assert client.attributes is not None
    assert len(client.attributes) == 2
    assert client.dropped_attributes == 2
    assert all(len(v) <= 1 for v in client.attributes.values() if isinstance(v, str))


def parents() -> list[SpanContext | None]:
    state = TraceState([("vendor", "v1")])
    return [None, SpanContext(0xABC << 64, 0xDEF, is_remote=True, trace_flags=TraceFlags(1), trace_state=state),
            SpanContext(0xABC << 64, 0xDEF, is_remote=True, trace_flags=TraceFlags(0), trace_state=state),
            SpanContext(0xABC << 64, 0xDEF, is_remote=False, trace_flags=TraceFlags(3)),
            SpanContext(0xABC << 64, 0xDEF, is_remote=False, trace_flags=TraceFlags(0))]


@pytest.mark.parametrize("sampler", [ALWAYS_ON, ParentBased(ALWAYS_ON), TracerProvider().sampler])
@pytest.mark.parametrize("parent", parents())
def test_the_inline_sampler_decides_as_the_sdk_sampler(sampler: Sampler, parent: SpanContext | None) -> None:
    inline = SpanFactory(sampler, Counting(), RESOURCE, SCOPE, SpanLimits(), [])
    called = SpanFactory(sampler, Counting(), RESOURCE, SCOPE, SpanLimits(), [])
    assert inline.inline
    called.inline, called.needs_context = 0, True  # the sampler's own should_sample
    context = set_span_in_context(NonRecordingSpan(parent)) if parent is not None else None
    ours = inline.start("s", None, parent, SpanKind.CLIENT, {"a": 1})
    sdk = called.start("s", context, parent, SpanKind.CLIENT, {"a": 1})
    assert ours.context == sdk.context
    assert ours.context.trace_state == sdk.context.trace_state
    assert ours.context.trace_flags == sdk.context.trace_flags
    assert ours.is_recording() == sdk.is_recording()
    assert ours.attributes == sdk.attributes


def test_other_samplers_are_called() -> None:
    assert not SpanFactory(TraceIdRatioBased(0.5), Counting(), RESOURCE, SCOPE, SpanLimits(), []).inline
    assert not SpanFactory(ParentBased(TraceIdRatioBased(1.0)), Counting(), RESOURCE, SCOPE, SpanLimits(), []).inline


@pytest.mark.parametrize("parent", parents()[1:4])
def test_the_provider_calls_traceparent_is_the_propagators(monkeypatch: pytest.MonkeyPatch,
                                                           parent: SpanContext) -> None:
    traces._otel.load()
    monkeypatch.setattr(traces._otel, "fast_propagation", True)
    factory = SpanFactory(ParentBased(ALWAYS_ON), Counting(), RESOURCE, SCOPE, SpanLimits(), [])
    span = factory.start("s", None, parent, SpanKind.CLIENT, {})
    expected = {"content-type": "application/json"}
    inject(expected, context=span.in_context())
    token = traces.ATTEMPT.set(span)
    try:
        fast = traces.outgoing_headers({"content-type": "application/json"}, "http://h:1/v1")
        monkeypatch.setattr(traces._otel, "fast_propagation", False)
        slow = traces.outgoing_headers({"content-type": "application/json"}, "http://h:1/v1")
    finally:
        traces.ATTEMPT.reset(token)
    assert fast == slow == expected
    assert fast["traceparent"].startswith(f"00-{0xABC << 64:032x}-")
    assert ("tracestate" in fast) == bool(parent.trace_state)


def test_the_console_exporter_gets_readable_spans() -> None:
    out = io.StringIO()
    processor = SimpleSpanProcessor(FinishingExporter(ConsoleSpanExporter(out=out)))  # type: ignore[arg-type]
    factory = SpanFactory(ParentBased(ALWAYS_ON), Counting(), RESOURCE, SCOPE, SpanLimits(), [processor])
    span = factory.start("chat e", None, None, SpanKind.SERVER, {"gen_ai.operation.name": "chat"})
    span.end()
    printed = json.loads(out.getvalue())
    assert printed["name"] == "chat e"
    assert printed["attributes"] == {"gen_ai.operation.name": "chat"}
    assert printed["kind"] == "SpanKind.SERVER"


@pytest.mark.parametrize("ids", [(1, 2), (0xABC << 64, 0xDEF), (0, 2), (1, 0), (2**128 - 1, 2**64 - 1)])
@pytest.mark.parametrize("state", [None, TraceState([("vendor", "v1")])])
def test_the_span_context_is_the_sdks(ids: tuple[int, int], state: TraceState | None) -> None:
    from modelgate_proxy.trace_spans import _sdk

    _sdk.load()
    for flags in (TraceFlags(0), TraceFlags(1), TraceFlags(3)):
        ours = _sdk.span_context(ids[0], ids[1], flags, state)
        sdk = SpanContext(ids[0], ids[1], is_remote=False, trace_flags=flags, trace_state=state)
        assert type(ours) is SpanContext
        assert tuple(ours) == tuple(sdk)
        assert (ours.is_valid, ours.trace_state, ours.is_remote) == (sdk.is_valid, sdk.trace_state, False)
    assert _sdk.span_context.__name__ == "fast"  # the SDK's tuple is as the fast one makes it


@pytest.mark.parametrize("extra", [{}, {"HTTPS_PROXY": "http://p:3128"}, {"no_proxy": "localhost"},
                                   {"REQUESTS_CA_BUNDLE": "/ca.pem", "OTEL_EXPORTER_OTLP_ENDPOINT": "https://c"},
                                   {"CURL_CA_BUNDLE": "/ca.pem", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://c"},
                                   {"NETRC": "/n"},
                                   {"OTEL_PYTHON_EXPORTER_OTLP_HTTP_TRACES_CREDENTIAL_PROVIDER": "x"}])
def test_the_exporter_session_skips_the_environment_only_when_it_has_nothing_for_requests(
        extra: dict[str, str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    session = traces.plain_session({"PATH": "/bin", "OTEL_TRACES_EXPORTER": "otlp", **extra})
    plain = traces.plain_session({"REQUESTS_CA_BUNDLE": "/ca.pem", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})
    assert plain is not None  # a CA bundle is not read for plain http
    if extra:
        assert session is None
    else:
        assert session is not None
        assert session.trust_env is False
        (tmp_path / ".netrc").write_text("machine m login l password p\n")
        assert traces.plain_session({"PATH": "/bin"}) is None
