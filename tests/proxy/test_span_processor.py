"""The proxy's batch span processor (modelgate_proxy.trace_spans.batch_span_processor): the SDK's
BatchSpanProcessor with a one-step on_end; the same spans exported as the SDK's own processor exports, for the
OTEL_BSP_* bound (the oldest dropped past it), the batch size, unsampled spans, shutdown and force_flush."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision, Sampler, SamplingResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind

from modelgate_proxy.trace_spans import FinishingExporter, LiveSpan, SpanFactory, batch_span_processor


class Gate:
    """An exporter that keeps span names; while ``hold`` is clear it blocks in export (the queue then fills)."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.batches: list[int] = []
        self.hold, self.inside = threading.Event(), threading.Event()
        self.hold.set()

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.inside.set()
        self.hold.wait(10)
        self.batches.append(len(spans))
        self.names.extend(span.name for span in spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class RecordOnly(Sampler):
    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        return SamplingResult(Decision.RECORD_ONLY)

    def get_description(self) -> str:
        return "RecordOnly"


PROCESSORS: dict[str, Callable[[Any], Any]] = {"proxy": batch_span_processor, "sdk": BatchSpanProcessor}


def factory(processor: Any, sampler: Sampler = ALWAYS_ON) -> SpanFactory:
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    return SpanFactory(sampler, RandomIdGenerator(), Resource.create({}), InstrumentationScope("t"), SpanLimits(),
                       [processor])


def end(spans: SpanFactory, *names: str) -> None:
    for name in names:
        spans.start(name, None, None, SpanKind.SERVER, {}).end()


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_the_proxys_processor_takes_the_one_step_path() -> None:
    processor = batch_span_processor(Gate())
    assert processor._fast  # the SDK's processor is laid out as it expects: what these tests test is the fast path
    assert isinstance(processor, BatchSpanProcessor)
    processor.shutdown()


@pytest.mark.parametrize("kind", PROCESSORS)
def test_past_the_queue_bound_the_oldest_spans_are_dropped_as_the_sdk_drops_them(
        kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "4")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
    gate = Gate()
    gate.hold.clear()
    processor = PROCESSORS[kind](FinishingExporter(gate))
    spans = factory(processor)
    end(spans, "a", "b", "c", "d")  # a full batch: the thread takes it and blocks in export
    assert gate.inside.wait(10)
    wait_for(lambda: len(processor._batch_processor._queue) == 0)
    end(spans, "e", "f", "g", "h", "i", "j")  # 4 fit; the 2 oldest of them are dropped
    assert len(processor._batch_processor._queue) == 4
    gate.hold.set()
    processor.force_flush()
    wait_for(lambda: len(gate.names) == 8)
    assert sorted(gate.names) == ["a", "b", "c", "d", "g", "h", "i", "j"]
    assert all(size <= 4 for size in gate.batches)
    processor.shutdown()


@pytest.mark.parametrize("kind", PROCESSORS)
def test_a_full_batch_wakes_the_thread_and_shutdown_exports_what_waits(kind: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "3")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
    gate = Gate()
    processor = PROCESSORS[kind](FinishingExporter(gate))
    spans = factory(processor)
    end(spans, "a", "b", "c")  # a full batch: exported without waiting for the 60 s delay
    wait_for(lambda: len(gate.names) == 3)
    end(spans, "d", "e")  # less than a batch: waits for the delay, or the shutdown
    time.sleep(0.1)
    assert len(gate.names) == 3
    processor.shutdown()
    assert gate.names == ["a", "b", "c", "d", "e"]
    end(spans, "late")  # after shutdown: not exported
    assert gate.names == ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize("kind", PROCESSORS)
def test_the_schedule_delay_exports_less_than_a_batch(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    gate = Gate()
    processor = PROCESSORS[kind](FinishingExporter(gate))
    end(factory(processor), "a")
    wait_for(lambda: gate.names == ["a"])
    processor.shutdown()


@pytest.mark.parametrize("kind", PROCESSORS)
def test_spans_recorded_but_not_sampled_are_not_exported(kind: str) -> None:
    gate = Gate()
    processor = PROCESSORS[kind](FinishingExporter(gate))
    spans = factory(processor, RecordOnly())
    span = spans.start("recorded", None, None, SpanKind.SERVER, {})
    assert isinstance(span, LiveSpan)
    assert span.is_recording()
    assert not span.context.trace_flags.sampled
    span.end()
    processor.force_flush()
    processor.shutdown()
    assert gate.names == []


def test_a_forked_child_goes_the_sdks_way() -> None:
    gate = Gate()
    processor = batch_span_processor(FinishingExporter(gate))
    processor._forked()  # what os.register_at_fork calls in a child
    assert not processor._fast
    end(factory(processor), "a")
    processor.shutdown()
    assert gate.names == ["a"]
