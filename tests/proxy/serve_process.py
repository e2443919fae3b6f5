"""Run ``modelgate serve`` as its own process (for timing and memory tests, where the test's own threads must
not share the proxy's interpreter), and read its resident memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.standins.server import free_port

from .harness import NO_AUTH, write_secret

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServeProcess:
    url: str
    proc: subprocess.Popen[bytes]

    def rss_kib(self) -> int:
        """The process's resident set now (VmRSS), in KiB."""
        return _status_field(self.proc.pid, "VmRSS")

    def peak_rss_kib(self) -> int:
        """The process's highest resident set so far (VmHWM), in KiB."""
        return _status_field(self.proc.pid, "VmHWM")


def wait_until_answering(proc: subprocess.Popen[bytes], url: str, path: str = "/readyz", seconds: float = 30,
                         log: Path | None = None) -> None:
    """Poll ``url + path`` until it answers 200; fail with the process's output (its piped stdout, or ``log``)
    if it exits first, or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}{path}", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"the proxy exited: {_output(proc, log)!r}")
        if time.monotonic() > deadline:
            raise AssertionError(f"the proxy did not answer 200 on {path} within {seconds} s: {_output(proc, log)!r}")
        time.sleep(0.1)


def _output(proc: subprocess.Popen[bytes], log: Path | None) -> str | bytes:
    """What the process printed: ``log``, or its piped stdout (read only once it exited: read() waits for EOF)."""
    if log is not None:
        return log.read_text()
    return proc.stdout.read() if proc.stdout is not None and proc.poll() is not None else b""


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 15 s."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _status_field(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {name} in /proc/{pid}/status")


@contextmanager
def serve_process(tmp_path: Path, manifests: list[dict[str, Any]], *, secrets: dict[str, dict[str, str]],
                  extra: list[str] | None = None, auth: Sequence[str] = NO_AUTH) -> Iterator[ServeProcess]:
    path = tmp_path / f"endpoints-{time.time_ns()}.yaml"
    path.write_text(yaml.safe_dump_all(manifests))
    for name, keys in secrets.items():
        for key, value in keys.items():
            write_secret(tmp_path / "secrets", name, key, value)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "proxy")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelgate_proxy", "serve", "-f", str(path), "--secrets-dir", str(tmp_path / "secrets"),
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", *auth, *(extra or [])],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(proc, url, seconds=60)
        yield ServeProcess(url, proc)
    finally:
        stop(proc)
