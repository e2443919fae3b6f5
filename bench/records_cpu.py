"""In-process cost of the record stages with Delta tables (docs/records.md, "Cost"): the usage-tracking and
payload-log stages as ``serve`` builds them for the bench endpoints (``--table-root`` to a temporary directory,
spill directory on, the app's metrics), ``N`` chat requests at a paced rate on an asyncio loop, each the calls a
request makes into the stages (the stage call, then the finishers with the bench's answer), while the tables' writer
tasks encode and commit real Delta tables in their worker threads.

    .venv/bin/python bench/records_cpu.py [N] [RATE] [MODE]   # default 30000 requests at 2000/s, MODE tables
    .venv/bin/python bench/records_cpu.py stages [MODE]       # the stages' calls alone, back to back

MODE: ``tables`` (usage tracking and payload logging, both to tables: bench profile ``tables``), ``payload-table``
(payload logging only: profile ``payload-table``), ``none`` (the same loop, requests and pacing without the
stages: what to subtract). Prints the event-loop thread's CPU per request, the whole process's (the writer
threads and delta-rs' included, after the final flush), the rows committed, and the loop's lateness: between
requests the loop waits in ``epoll`` as the server does for its sockets (the GIL released), and how late it wakes
is what a background thread holding the GIL costs a request at one connection (p50 / p99 / max, the wake-ups later
than 2 ms and 5 ms (uvloop's timers have 1 ms steps: under 2 ms is the timer), and how many of those fell while a batch was being encoded or committed).

Run it against another checkout's code with ``PYTHONPATH=<checkout>/proxy`` to compare two versions in the same
minute (alternate them), under the bench lock.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

REQUEST = {"messages": [{"role": "user", "content": "Hello, please answer in one short sentence."}], "max_tokens": 16}
ANSWER = orjson.loads(
    b'{"id":"chatcmpl-bench0001","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! This is a fixed benchmark response."},'
    b'"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":14,"completion_tokens":9,"total_tokens":23},'
    b'"system_fingerprint":"fp_bench"}')

Window = tuple[float, float]


def _windows(module: Any, name: str, into: list[Window]) -> None:
    """Record the perf_counter windows of ``module.name`` calls (the writer's encodes and commits)."""
    original = getattr(module, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            into.append((t0, time.perf_counter()))

    setattr(module, name, timed)


def _within(t: float, windows: list[Window], slack: float = 0.001) -> bool:
    return any(a - slack <= t <= b + slack for a, b in windows)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def build(mode: str, root: Path, settings: Any) -> tuple[Any, Callable[[], None]]:
    """The app's tables and one bench request's calls into the record stages of ``mode``."""
    from modelgate_proxy.exchange import Exchange, Outcome
    from modelgate_proxy.metrics import Metrics
    from modelgate_proxy.spec.gateway import InferenceTableConfig
    from modelgate_proxy.stages.records.payload_log import PayloadLog
    from modelgate_proxy.stages.records.table_store import TableStore
    from modelgate_proxy.stages.records.tables import Tables
    from modelgate_proxy.stages.records.usage import UsageTracking
    from modelgate_proxy.usage_tokens import TokenUsage

    metrics = Metrics()
    tables = Tables(TableStore(str(root / "tables")), settings, metrics.table_rows_lost)
    config = InferenceTableConfig.model_validate({"enabled": True, "catalogName": "bench", "schemaName": "gw"})
    entity_spec = SimpleNamespace(effective_name="bench-chat-upstream", external_model=SimpleNamespace(
        provider="openai", name="gpt-4o-mini", task="llm/v1/chat"),
        model_dump_json=lambda by_alias=True: '{"name":"bench-chat-upstream"}')
    usage_on = mode == "tables"
    stages: list[Callable[[Any, Any], Any]] = []
    if mode != "none":
        endpoint_tables = tables.for_endpoint("bench-chat", [entity_spec], usage=usage_on,  # type: ignore[list-item]
                                              payload_table=PayloadLog.table_name("bench-chat", config))
        if usage_on:
            stages.append(UsageTracking(None, metrics.usage_tokens, metrics.principal_usage(100), endpoint_tables))
        stages.append(PayloadLog("bench-chat", config, None, endpoint_tables))
    endpoint = SimpleNamespace(name="bench-chat")
    entity = SimpleNamespace(name="bench-chat-upstream")
    answer_json = orjson.dumps(ANSWER)
    usage = TokenUsage(14, 9, False)

    def done(_ex: Any) -> None:  # the pipeline's next step: the stages only return what it returns
        return None

    def request() -> None:
        payload = orjson.loads(orjson.dumps(REQUEST))  # a fresh body per request, as parsing gives
        ex = Exchange(endpoint=endpoint, api="openai", task="llm/v1/chat", payload=payload,  # type: ignore[arg-type]
                      stream=False, arrived=time.perf_counter())
        for stage in stages:
            stage(ex, done)
        ex.entity = entity  # type: ignore[assignment]
        ex.finish(Outcome(status=200, latency=0.0005, body=ANSWER, usage=usage, body_json=answer_json))

    return tables, request


def stages_only(mode: str, root: Path) -> None:
    """The stages' calls alone, back to back, the tables' writers not started (rows only queue): the least noisy
    figure of what the request path pays on the loop, min of 7 x 10,000 requests."""
    from modelgate_proxy.stages.records.table_sink import TableSettings

    _tables, request = build(mode, root, TableSettings(max_queue=10**7, max_queue_bytes=2**40, batch_rows=10**7))
    for _ in range(2000):
        request()
    best = min(_timed(request, 10_000) for _ in range(7))
    print(f"stages {mode}: {best * 1e6:.2f} µs/request on the calling thread (min of 7 x 10,000)")


def _timed(request: Callable[[], None], count: int) -> float:
    t0 = time.thread_time()
    for _ in range(count):
        request()
    return (time.thread_time() - t0) / count


async def run(count: int, rate: float, mode: str, root: Path) -> None:
    from modelgate_proxy.stages.records import table_sink
    from modelgate_proxy.stages.records.table_rows import now, payload_row, usage_row
    from modelgate_proxy.stages.records.table_schemas import to_table
    from modelgate_proxy.stages.records.table_sink import TableSettings, TableSink

    encodes: list[Window] = []
    commits: list[Window] = []
    _windows(table_sink, "_encode", encodes)
    _windows(TableSink, "_write", commits)
    tables, request = build(mode, root, TableSettings(spill_dir=str(root / "spill")))
    await tables.start()

    for _ in range(200):  # warm up (caches)
        request()
    # and pyarrow's first encodes (~70 ms: its kernels set up), in the same way for any version of the code
    warm = [payload_row(request_id="0" * 32, client_request_id=None, time=now(), status=200, latency=0.001,
                        request=REQUEST, response=ANSWER, entity_id="e", requester="r")]
    await asyncio.to_thread(to_table, warm * 1000, "payload")
    warm = [usage_row(request_id="0" * 32, client_request_id=None, time=now(), status=200, requester="r",
                      input_tokens=1, output_tokens=1, usage_context=None, streaming=False, entity_id="e")]
    await asyncio.to_thread(to_table, warm * 1000, "usage")
    await asyncio.sleep(0.5)
    lateness: list[tuple[float, float]] = []  # (when, seconds late)
    loop_thread = threading.get_ident()
    assert loop_thread == threading.main_thread().ident
    process0, thread0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
    for n in range(count):
        request()
        due = wall0 + (n + 1) / rate
        ahead = due - time.perf_counter()
        if ahead > 0:
            await asyncio.sleep(ahead)  # the loop waits in epoll, the GIL released
            woke = time.perf_counter()
            lateness.append((woke, woke - due))
    thread1, wall1 = time.thread_time(), time.perf_counter()
    await tables.stop()
    process1 = time.process_time()
    written = {name: sink.written for name, sink in tables._sinks.items()}
    dropped = {name: sink.dropped for name, sink in tables._sinks.items() if sink.dropped}
    late = [s for _, s in lateness]
    over1 = [(t, s) for t, s in lateness if s > 0.002]
    over3 = [(t, s) for t, s in lateness if s > 0.005]
    busy = encodes + commits

    def during(over: list[tuple[float, float]]) -> str:
        enc = [s for t, s in over if _within(t, encodes)]
        com = [s for t, s in over if _within(t, commits) and not _within(t, encodes)]
        return (f"{len(enc)} during an encode (max {max(enc, default=0) * 1e3:.1f} ms), {len(com)} during a commit "
                f"(max {max(com, default=0) * 1e3:.1f} ms)")

    print(f"mode {mode}: {count} requests at {rate:.0f}/s in {wall1 - wall0:.1f} s; event-loop thread "
          f"{(thread1 - thread0) / count * 1e6:.1f} µs/request, process {(process1 - process0) / count * 1e6:.1f} "
          f"µs/request (writer threads and the final flush included); rows written {written}"
          f"{f', dropped {dropped}' if dropped else ''}")
    print(f"  loop lateness after a wait: p50 {_pct(late, 0.5) * 1e6:.0f} µs, p99 {_pct(late, 0.99) * 1e6:.0f} µs, "
          f"max {max(late, default=0) * 1e6:.0f} µs; {len(over1)} wake-ups > 2 ms ({during(over1)}), "
          f"{len(over3)} > 5 ms ({sum(_within(t, busy) for t, _ in over3)} during either); encodes {len(encodes)} "
          f"(longest {max((b - a for a, b in encodes), default=0) * 1e3:.1f} ms), commits {len(commits)} "
          f"(longest {max((b - a for a, b in commits), default=0) * 1e3:.1f} ms)")


def main() -> None:
    if sys.argv[1:2] == ["stages"]:
        with tempfile.TemporaryDirectory(prefix="records-cpu-") as root:
            stages_only(sys.argv[2] if len(sys.argv) > 2 else "tables", Path(root))
        return
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 30_000
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 2000.0
    mode = sys.argv[3] if len(sys.argv) > 3 else "tables"
    if mode not in ("tables", "payload-table", "none"):
        sys.exit(f"unknown mode {mode!r}: tables, payload-table or none")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with tempfile.TemporaryDirectory(prefix="records-cpu-") as root:
        asyncio.run(run(count, rate, mode, Path(root)))


if __name__ == "__main__":
    main()
