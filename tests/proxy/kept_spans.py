"""Helpers of the tracing tests: an in-memory span exporter that keeps every span it is given, and counting ids."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.id_generator import IdGenerator


class Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


class Counting(IdGenerator):
    """Ids ``start``, ``start + 1``, ... (trace ids shifted into the high half), so two tracers given fresh ones
    make the same ids."""

    def __init__(self, start: int = 0x1000) -> None:
        self.next = itertools.count(start)

    def generate_span_id(self) -> int:
        return next(self.next)

    def generate_trace_id(self) -> int:
        return next(self.next) << 64

    def is_trace_id_random(self) -> bool:
        return True
