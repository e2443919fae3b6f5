"""An OTLP/HTTP sink for the tracing bench profile: accepts every POST (``/v1/traces``), reads and discards the
body, answers an empty ExportTraceServiceResponse (zero protobuf bytes). Loopback only; stdlib only, so it costs
the measured proxy nothing but the export itself.

    python3 bench/otlp_sink.py PORT_FILE     # binds 127.0.0.1:<free port>, writes the port to PORT_FILE
"""

from __future__ import annotations

import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Sink(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    received = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        Sink.received += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the profile's kill: say what was received, then go
    Path(sys.argv[1]).write_text(str(server.server_address[1]))
    try:
        server.serve_forever()
    finally:
        sys.stderr.write(f"otlp sink: {Sink.received} exports received\n")


if __name__ == "__main__":
    main()
