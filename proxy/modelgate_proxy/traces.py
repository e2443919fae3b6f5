"""OpenTelemetry traces (docs/tracing.md): off by default, on with the standard ``OTEL_*`` variables.

:func:`tracing_wanted` reads ``OTEL_TRACES_EXPORTER`` (``otlp`` or ``console``; unset or ``none``: off, unlike
the SDK's own default of ``otlp``, so a proxy exports nothing unless asked) and ``OTEL_SDK_DISABLED``.
:class:`Tracing` builds the SDK's tracer provider in the process that serves (after uvicorn's workers forked),
with a batch span processor (its own thread; ``OTEL_BSP_*``) and the OTLP/HTTP protobuf exporter, which reads
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, ``..._HEADERS``, ``..._TIMEOUT``,
``..._COMPRESSION`` itself; the sampler comes from ``OTEL_TRACES_SAMPLER`` / ``..._ARG``, the resource from
``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` (service name default ``modelgate-proxy``), the
propagators from ``OTEL_PROPAGATORS`` (default W3C ``traceparent`` + baggage). Spans are the proxy's own
(:mod:`.trace_spans`: the SDK's span was most of tracing's cost on the event loop), started with the provider's
sampler and id generator and ended into the SDK's ``ReadableSpan`` for its processors (docs/tracing.md, "Cost").

With tracing off nothing here is imported by the request path's stages (they are not in the pipeline) and
:func:`outgoing_headers` costs one context-variable read per provider call. opentelemetry is imported only when
tracing is on.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from .trace_spans import LiveSpan

log = logging.getLogger("modelgate.proxy")

EXPORTERS = ("otlp", "console")
DEFAULT_SERVICE_NAME = "modelgate-proxy"

ATTEMPT: ContextVar[LiveSpan | None] = ContextVar("modelgate_attempt_span", default=None)
"""The client span of the provider call in progress in this task (set by :mod:`.stages.tracing`)."""

PROVIDER_NAMES = {
    "openai": "openai", "anthropic": "anthropic", "cohere": "cohere", "amazon-bedrock": "aws.bedrock",
    "google-cloud-vertex-ai": "gcp.vertex_ai", "palm": "gcp.gen_ai", "databricks-model-serving": "databricks",
    "ai21labs": "ai21", "custom": "custom",
}
"""Our provider names -> ``gen_ai.provider.name`` (the conventions' well-known values where one exists)."""

OPERATIONS = {"llm/v1/chat": "chat", "llm/v1/completions": "text_completion", "llm/v1/embeddings": "embeddings"}
"""Tasks -> ``gen_ai.operation.name``."""


_PROPAGATED = frozenset((b"traceparent", b"tracestate", b"baggage"))
"""The request headers the propagators may read."""

_ADDRESSES: dict[str, dict[str, Any]] = {}
_ADDRESSES_BOUND = 1024
"""Provider URL -> its ``server.address`` / ``server.port`` attributes (a URL is configuration: few; bounded)."""


_DEFAULT_PROPAGATORS = ("tracecontext,baggage", "tracecontext")
_NO_ATTRIBUTES: Mapping[str, Any] = MappingProxyType({})


class _OTel:
    """The opentelemetry names the request path uses, imported once by the first :class:`Tracing` (so a proxy
    with tracing off never imports opentelemetry, and a span's hot path does no import statement)."""

    fast_propagation = False
    """Whether ``OTEL_PROPAGATORS`` names the default W3C propagators (set by :class:`Tracing`)."""

    def load(self) -> None:
        from opentelemetry.context import get_current
        from opentelemetry.propagate import extract, inject
        from opentelemetry.trace import SpanKind, get_current_span

        self.extract, self.inject, self.get_current_span = extract, inject, get_current_span
        self.get_current, self.SpanKind = get_current, SpanKind


_otel: Any = _OTel()


class TracingConfigError(ValueError):
    """The ``OTEL_*`` settings ask for something this proxy cannot do."""


def tracing_wanted(env: Mapping[str, str]) -> bool:
    """Whether the environment turns tracing on; raises :class:`TracingConfigError` for an unknown exporter."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "none").split(",") if n.strip()]
    names = [n for n in names if n != "none"]
    unknown = [n for n in names if n not in EXPORTERS]
    if unknown:
        raise TracingConfigError(f"OTEL_TRACES_EXPORTER={','.join(unknown)} is not supported "
                                 f"(supported: {', '.join(EXPORTERS)}, none)")
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if "otlp" in names and protocol not in (None, "", "http/protobuf"):
        raise TracingConfigError(f"OTLP protocol {protocol!r} is not supported (supported: http/protobuf)")
    return bool(names)


class Tracing:
    """The process's spans: the SDK's tracer provider (sampler, ids, resource, processors) and the proxy's
    :class:`~modelgate_proxy.trace_spans.SpanFactory`; :meth:`shutdown` exports what waits."""

    def __init__(self, env: Mapping[str, str]) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import SpanLimits, TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        from .trace_spans import FinishingExporter, SpanFactory, batch_span_processor

        _otel.load()
        propagators = ",".join(p.strip() for p in env.get("OTEL_PROPAGATORS", "tracecontext,baggage").split(","))
        _otel.fast_propagation = propagators in _DEFAULT_PROPAGATORS

        named = env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
        self.provider: TracerProvider = TracerProvider(
            resource=Resource.create({} if named else {"service.name": DEFAULT_SERVICE_NAME}))
        processors: list[BatchSpanProcessor] = []
        for name in {n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",")}:
            exporter: SpanExporter | None = None
            live = False
            if name == "otlp":
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                from .otlp_encoding import install

                # the exporter thread's protobuf encoding, from the proxy's spans as they are (docs/tracing.md)
                live = install()
                exporter = OTLPSpanExporter(session=plain_session(os.environ))
            elif name == "console":
                exporter = ConsoleSpanExporter()
            if exporter is not None:
                processors.append(batch_span_processor(FinishingExporter(exporter, live)))
                self.provider.add_span_processor(processors[-1])  # its shutdown stops them
        self.spans = SpanFactory(self.provider.sampler, self.provider.id_generator, self.provider.resource,
                                 InstrumentationScope("modelgate_proxy"), SpanLimits(), processors)
        if any(isinstance(p.span_exporter, FinishingExporter) and p.span_exporter.live for p in processors):
            from .otlp_encoding import unset_status

            unset_status(self.spans.unset_status)

    def start_request(self, name: str, headers: Sequence[tuple[bytes, bytes]], base: Mapping[str, Any],
                      start_ns: int) -> LiveSpan:
        """The server span of one request, a child of the caller's ``traceparent`` when it sent one; ``base``: its
        constant first attributes (made once, never changed)."""
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers if k in _PROPAGATED}
        if carrier:
            context = _otel.extract(carrier)
            parent = _otel.get_current_span(context).get_span_context()
        else:
            context = parent = None
        return self.spans.start(name, context, parent, _otel.SpanKind.SERVER, {}, start_ns, base)

    def start_attempt(self, parent: LiveSpan | None, name: str, attributes: dict[str, Any],
                      base: Mapping[str, Any] | None = None) -> LiveSpan:
        """The client span of one provider call: ``base`` (constant, made once) then ``attributes`` (its own)."""
        constant = base if base is not None else _NO_ATTRIBUTES
        if parent is None:
            return self.spans.start(name, None, None, _otel.SpanKind.CLIENT, attributes, None, constant)
        return self.spans.start(name, parent.in_context() if self.spans.needs_context else None, parent.context,
                                _otel.SpanKind.CLIENT, attributes, None, constant)

    def shutdown(self) -> None:
        """Export what waits and stop (blocks: call it in a thread)."""
        self.provider.shutdown()


def plain_session(env: Mapping[str, str]) -> Any:
    """The OTLP exporter's ``requests.Session`` without ``trust_env`` when the environment gives requests nothing to
    read for it (no ``*_proxy`` variable, no ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` for an https endpoint, no
    ``NETRC`` nor ``~/.netrc`` / ``~/_netrc``, no OTLP credential provider, Linux), so the same request is sent
    without requests reading the proxies, the CA bundle and the netrc file again for every batch (about 0.5 ms of
    the exporter thread's CPU a batch); None (the exporter's own session, which reads them) otherwise. Read once, at
    start (a netrc file or variable that appears later is not read)."""
    if sys.platform in ("darwin", "win32"):  # requests reads the system's proxy settings there too
        return None
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "http:"
    bundles = () if endpoint.strip().lower().startswith("http:") else ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
    for name in env:  # (a CA bundle is read for https only)
        upper = name.upper()
        if upper.endswith("_PROXY") or upper == "NETRC" or upper in bundles or (
                upper.startswith("OTEL_PYTHON_EXPORTER_OTLP_HTTP") and upper.endswith("CREDENTIAL_PROVIDER")):
            return None
    if any(os.path.exists(os.path.expanduser(f"~/{name}")) for name in (".netrc", "_netrc")):
        return None
    import requests

    session = requests.Session()
    session.trust_env = False
    return session


def end_span(span: LiveSpan, attributes: dict[str, Any], error_type: str | None = None,
             message: str | None = None) -> None:
    """Add ``attributes`` and the error, if any, and end ``span``."""
    if attributes:
        span.set_attributes(attributes)
    if error_type is not None:
        span.set_attributes({"error.type": error_type})
        span.set_error(message)
    span.end()


def outgoing_headers(headers: dict[str, str], url: str) -> dict[str, str]:
    """``headers`` of a provider call, with the W3C ``traceparent`` of the attempt's span when one is in progress
    (and ``server.address`` / ``server.port`` recorded on it). Without tracing: ``headers`` as they are."""
    span = ATTEMPT.get()
    if span is None:
        return headers
    address = _ADDRESSES.get(url)
    if address is None:
        address = _address(url)
        if len(_ADDRESSES) < _ADDRESSES_BOUND:
            _ADDRESSES[url] = address
    if address:
        span.set_attributes(address)
    out = dict(headers)
    if _otel.fast_propagation and not _otel.get_current():
        # What the W3C trace-context propagator writes; the baggage propagator writes nothing (the current
        # context is empty: no baggage). Any other propagator set, or a context with something in it: the SDK's.
        context = span.context
        out["traceparent"] = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
        if context.trace_state:
            out["tracestate"] = context.trace_state.to_header()
    else:
        _otel.inject(out, context=span.in_context())
    return out


def _address(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if not parts.hostname:
        return {}
    return {"server.address": parts.hostname, "server.port": parts.port or (443 if parts.scheme == "https" else 80)}


def answer_attributes(body: Any) -> dict[str, Any]:
    """GenAI response attributes of an OpenAI-format answer (model, id, finish reasons, token usage)."""
    out: dict[str, Any] = {}
    if not isinstance(body, dict):
        return out
    model, answer_id = body.get("model"), body.get("id")
    if isinstance(model, str):
        out["gen_ai.response.model"] = model
    if isinstance(answer_id, str):
        out["gen_ai.response.id"] = answer_id
    choices = body.get("choices")
    if isinstance(choices, list):
        reasons = tuple(c["finish_reason"] for c in choices  # a tuple, as the SDK keeps sequences
                        if isinstance(c, dict) and isinstance(c.get("finish_reason"), str))
        if reasons:
            out["gen_ai.response.finish_reasons"] = reasons
    usage = body.get("usage")
    if isinstance(usage, dict):
        for key, attribute in (("prompt_tokens", "gen_ai.usage.input_tokens"),
                               ("completion_tokens", "gen_ai.usage.output_tokens")):
            value = usage.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                out[attribute] = value
    return out
