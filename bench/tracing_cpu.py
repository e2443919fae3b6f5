"""In-process CPU of tracing per request (docs/tracing.md, "Cost"): the calls the tracing stage and wrapper make
for one chat request (a server span, one client span, the provider call's traceparent, the answer's attributes),
``N`` times at a paced rate, every span exported over OTLP/HTTP to a sink in another process that counts them.

    .venv/bin/python bench/tracing_cpu.py [N] [RATE] [floor]   # default 10000 requests at 2000/s

Prints the event-loop (main) thread's CPU per request, the whole process's (with the exporter's thread, after the
shutdown flush), the spans the sink received (2 per request: none dropped) and how late the main thread woke from
its pacing sleeps (p99, p99.9, max, and how many wake-ups were more than 2 ms late: a background thread holding the
GIL delays them, as it delays the event loop's wake-up on a request); ``floor``: the same loop and pacing
without the tracing calls (what to subtract). Run it against another checkout's
code with ``PYTHONPATH=<checkout>/proxy`` to compare two versions in the same minute.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SINK = r"""
import signal, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
spans = 0
class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        global spans
        message = ExportTraceServiceRequest()
        message.ParseFromString(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        spans += sum(len(s.spans) for r in message.resource_spans for s in r.scope_spans)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
def stop(*_):
    Path(sys.argv[1] + ".spans").write_text(str(spans))
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
Path(sys.argv[1]).write_text(str(server.server_address[1]))
server.serve_forever()
"""

HEADERS = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"wrk"), (b"content-type", b"application/json"),
           (b"content-length", b"120")]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    rate = float(sys.argv[2]) if len(sys.argv) > 2 else 2000.0
    floor = len(sys.argv) > 3 and sys.argv[3] == "floor"
    port_file = Path(tempfile.mkdtemp()) / "port"
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(port_file)])
    for _ in range(100):
        if port_file.exists() and port_file.read_text():
            break
        time.sleep(0.05)
    os.environ.update({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SERVICE_NAME": "modelgate-bench",
                       "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port_file.read_text()}"})
    from modelgate_proxy import traces
    from modelgate_proxy.stages import tracing as stage

    tracing = traces.Tracing(os.environ)
    server_name, server_start = stage._request_start("bench-chat", "llm/v1/chat", False)
    client_name, client_start = stage._attempt_start("bench-chat-upstream", "gpt-4o-mini", "openai", "llm/v1/chat")
    url = "http://127.0.0.1:8081/v1/chat/completions"
    based = "base" in inspect.signature(tracing.start_attempt).parameters

    def request(n: int) -> None:
        body: dict[str, Any] = {
            "id": f"chatcmpl-{n:08d}", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 14, "completion_tokens": 9, "total_tokens": 23}}
        server = tracing.start_request(server_name, HEADERS, server_start, time.time_ns())
        if based:  # as the stage calls it (older code: the constant attributes copied into the span's)
            client = tracing.start_attempt(server, client_name, {"modelgate.attempt": 1,
                                                                 "gen_ai.request.max_tokens": 16}, client_start)
        else:
            client = tracing.start_attempt(server, client_name, {**client_start, "modelgate.attempt": 1,
                                                                 "gen_ai.request.max_tokens": 16})
        token = traces.ATTEMPT.set(client)
        traces.outgoing_headers({"authorization": "Bearer x", "content-type": "application/json"}, url)
        traces.ATTEMPT.reset(token)
        answer = traces.answer_attributes(body)
        traces.end_span(client, answer)
        answer = dict(answer)
        answer["gen_ai.usage.input_tokens"], answer["gen_ai.usage.output_tokens"] = 14, 9
        traces.end_span(server, {**answer, "http.response.status_code": 200, "modelgate.attempts": 1,
                                 "modelgate.served_entity": "bench-chat-upstream",
                                 "modelgate.request_id": f"{n:016x}-{n:016x}"})

    if floor:  # the loop, pacing and answer bodies without any tracing call: subtract from the figures above
        request = lambda n: {"id": f"chatcmpl-{n:08d}", "choices": [{"index": 0}]}  # noqa: E731
    for n in range(200):  # warm up (imports, caches)
        request(n)
    time.sleep(0.5)
    late: list[float] = []
    process0, thread0, wall0 = time.process_time(), time.thread_time(), time.perf_counter()
    for n in range(count):
        request(n)
        due = wall0 + (n + 1) / rate
        ahead = due - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
            late.append(time.perf_counter() - due)
    thread1 = time.thread_time()
    tracing.shutdown()
    process1 = time.process_time()
    sink.terminate()
    sink.wait()
    received = int(Path(str(port_file) + ".spans").read_text())
    print(f"requests {count} at {rate:.0f}/s: event-loop thread {(thread1 - thread0) / count * 1e6:.1f} µs/request,"
          f" process {(process1 - process0) / count * 1e6:.1f} µs/request (exporter thread included),"
          f" spans received {received} of {2 * (count + 200)}")
    late.sort()
    if late:
        print(f"wake-up late: p99 {late[int(len(late) * 0.99)] * 1e6:.0f} µs, p99.9 {late[int(len(late) * 0.999)] * 1e6:.0f}"
              f" µs, max {late[-1] * 1e6:.0f} µs, {sum(1 for x in late if x > 0.002)} of {len(late)} over 2 ms")


if __name__ == "__main__":
    main()
