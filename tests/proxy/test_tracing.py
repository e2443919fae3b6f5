"""OpenTelemetry traces (docs/tracing.md), received by an OTLP/HTTP receiver on loopback built on the OTLP
protobuf definitions (opentelemetry-proto): the span tree of a request with one fallback, the caller's W3C
``traceparent`` continued and the attempt's propagated to the provider, the GenAI attributes, a stream's
attempt ending with the stream; tracing off adds no stage and no header."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from modelgate_proxy.cli.manifests import ConfigError
from modelgate_proxy.cli.serve import _tracing_wanted
from modelgate_proxy.stages.tracing import TraceAttempt, TraceRequest
from tests.standins.server import serve_app

from .harness import endpoint, openai_entity, run_proxy

KEY = "sk-trace"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


class Receiver:
    """OTLP/HTTP (protobuf) on ``/v1/traces``: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/v1/traces", self.export, methods=["POST"])])

    async def export(self, request: Request) -> Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.body())
        with self.lock:
            for resource_spans in message.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    self.spans.extend(scope_spans.spans)
        return Response(ExportTraceServiceResponse().SerializeToString(), media_type="application/x-protobuf")

    def wait(self, count: int, timeout: float = 10) -> list[Span]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.spans) >= count:
                    return list(self.spans)
            time.sleep(0.05)
        with self.lock:
            return list(self.spans)


class Provider:
    """OpenAI-format stand-in: ``/fail/v1/...`` answers 503, ``/ok/v1/...`` answers (a stream when asked);
    keeps each call's ``traceparent``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self.app = Starlette(routes=[Route("/{mode}/v1/chat/completions", self.chat, methods=["POST"])])

    async def chat(self, request: Request) -> Response:
        mode = request.path_params["mode"]
        self.calls.append((mode, request.headers.get("traceparent")))
        if mode == "fail":
            return JSONResponse({"error": {"message": "overloaded", "type": "server_error"}}, status_code=503)
        body = await request.json()
        if body.get("stream"):
            async def events() -> Any:
                yield b'data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-2024","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}]}\n\n'
                yield b'data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-2024","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}\n\n'
                yield b"data: [DONE]\n\n"
            return StreamingResponse(events(), media_type="text/event-stream")
        return JSONResponse({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
        })


def attrs(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        value = kv.value
        kind = value.WhichOneof("value")
        out[kv.key] = list(v.string_value for v in value.array_value.values) if kind == "array_value" \
            else getattr(value, kind)
    return out


def fallback_endpoint(base: str) -> dict[str, Any]:
    return endpoint("chat", [openai_entity(f"{base}/fail", name="first", model="gpt-4o"),
                             openai_entity(f"{base}/ok", name="second", model="gpt-4o-mini")],
                    routes=[("first", 100), ("second", 0)], ai_gateway={"fallbackConfig": {"enabled": True}})


@pytest.fixture
def otlp(monkeypatch: pytest.MonkeyPatch) -> Any:
    receiver = Receiver()
    with serve_app(receiver.app) as url:
        monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
        monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-under-test")
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        yield receiver


def test_the_span_tree_of_a_request_with_one_fallback(tmp_path: Path, otlp: Receiver) -> None:
    provider = Provider()
    with serve_app(provider.app) as base, \
            run_proxy(tmp_path, [fallback_endpoint(base)], secrets={"openai": {"api-key": KEY}}) as proxy:
        r = httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations", timeout=10,
                       headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
                       json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 20})
        assert r.status_code == 200
        assert r.headers["served-model-name"] == "second"
        spans = otlp.wait(3)
    assert len(spans) == 3
    server = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER]
    clients = sorted((s for s in spans if s.kind == Span.SPAN_KIND_CLIENT), key=lambda s: s.start_time_unix_nano)
    assert len(server) == 1
    assert len(clients) == 2
    request = server[0]
    # the caller's trace continues: same trace id, the caller's span is the parent
    assert request.trace_id.hex() == CALLER_TRACE
    assert request.parent_span_id.hex() == CALLER_SPAN
    assert request.name == "chat chat"
    a = attrs(request)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["http.response.status_code"] == 200
    assert a["modelgate.attempts"] == 2
    assert a["modelgate.served_entity"] == "second"
    assert a["gen_ai.usage.input_tokens"] == 7
    assert a["gen_ai.usage.output_tokens"] == 2
    assert a["gen_ai.response.model"] == "gpt-4o-2024-08-06"  # the answered attempt's answer, as the caller got it
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert request.status.code != Status.STATUS_CODE_ERROR
    failed, answered = clients
    for client in clients:  # both attempts are children of the request's span, inside it
        assert client.trace_id == request.trace_id
        assert client.parent_span_id == request.span_id
        assert request.start_time_unix_nano <= client.start_time_unix_nano
        assert client.end_time_unix_nano <= request.end_time_unix_nano
    assert failed.name == "chat gpt-4o"
    f = attrs(failed)
    assert f["gen_ai.provider.name"] == "openai"
    assert f["gen_ai.request.model"] == "gpt-4o"
    assert f["modelgate.served_entity"] == "first"
    assert f["error.type"] == "UpstreamError"
    assert f["http.response.status_code"] == 503
    assert f["server.address"] == "127.0.0.1"
    assert failed.status.code == Status.STATUS_CODE_ERROR
    assert answered.name == "chat gpt-4o-mini"
    g = attrs(answered)
    assert g["gen_ai.request.model"] == "gpt-4o-mini"
    assert g["gen_ai.request.max_tokens"] == 20
    assert g["gen_ai.response.model"] == "gpt-4o-2024-08-06"
    assert g["gen_ai.response.finish_reasons"] == ["stop"]
    assert g["gen_ai.usage.input_tokens"] == 7
    assert g["gen_ai.usage.output_tokens"] == 2
    assert "error.type" not in g
    assert failed.end_time_unix_nano <= answered.start_time_unix_nano
    # each provider call carried its own attempt's span as the parent
    assert provider.calls == [("fail", f"00-{CALLER_TRACE}-{failed.span_id.hex()}-01"),
                              ("ok", f"00-{CALLER_TRACE}-{answered.span_id.hex()}-01")]


def test_a_streamed_attempt_ends_with_the_stream(tmp_path: Path, otlp: Receiver) -> None:
    provider = Provider()
    with serve_app(provider.app) as base:
        manifest = endpoint("chat", [openai_entity(f"{base}/ok", model="gpt-4o")])
        with run_proxy(tmp_path, [manifest], secrets={"openai": {"api-key": KEY}}) as proxy:
            with httpx.stream("POST", f"{proxy.url}/serving-endpoints/chat/invocations", timeout=10,
                              json={"messages": [{"role": "user", "content": "hi"}], "stream": True}) as r:
                assert r.status_code == 200
                text = "".join(r.iter_text())
            assert "[DONE]" in text
            spans = otlp.wait(2)
    assert len(spans) == 2
    request = next(s for s in spans if s.kind == Span.SPAN_KIND_SERVER)
    attempt = next(s for s in spans if s.kind == Span.SPAN_KIND_CLIENT)
    assert attempt.parent_span_id == request.span_id
    assert len(request.parent_span_id) == 0  # no traceparent from the caller: a new trace
    a = attrs(attempt)
    assert a["gen_ai.response.model"] == "gpt-4o-2024"
    assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert a["gen_ai.usage.output_tokens"] == 1
    assert attrs(request)["gen_ai.request.stream"] is True
    traceparent = provider.calls[0][1]
    assert traceparent is not None
    assert traceparent.split("-")[:3] == ["00", request.trace_id.hex(), attempt.span_id.hex()]


def test_tracing_off_adds_no_stage_and_no_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    provider = Provider()
    with serve_app(provider.app) as base, \
            run_proxy(tmp_path, [fallback_endpoint(base)], secrets={"openai": {"api-key": KEY}}) as proxy:
        r = httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations", timeout=10,
                       headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
                       json={"messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200
        stages = proxy.state.endpoints["chat"].pipeline.stages
        assert proxy.state.services is not None
        assert proxy.state.services.tracing is None
    assert not any(isinstance(s, TraceRequest | TraceAttempt) for s in stages)
    assert provider.calls == [("fail", None), ("ok", None)]


@pytest.mark.parametrize(("env", "wanted"), [
    ({}, False), ({"OTEL_TRACES_EXPORTER": "none"}, False), ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
    ({"OTEL_TRACES_EXPORTER": "console"}, True),
    ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
])
def test_the_otel_variables_turn_tracing_on(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                            wanted: bool) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _tracing_wanted() is wanted


@pytest.mark.parametrize(("name", "value", "message"), [
    ("OTEL_TRACES_EXPORTER", "zipkin", "OTEL_TRACES_EXPORTER=zipkin is not supported"),
    ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "OTLP protocol 'grpc' is not supported"),
])
def test_otel_settings_it_cannot_honour_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str,
                                                    message: str) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message):
        _tracing_wanted()
