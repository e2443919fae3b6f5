"""A detached helper process of ``make up`` (the provider stand-in), recorded so ``make down`` finds it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .devcluster import REPO_ROOT as REPO


def _cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


@dataclass(frozen=True, slots=True)
class Background:
    """A detached process recorded in ``<dir>/run/<name>.json`` (pid, argv, extra facts such as a port).

    A recorded pid counts as ours only while ``/proc/<pid>/cmdline`` is still exactly the recorded argv, so a
    recycled pid is never signalled. Each runs in its own session; ``stop`` signals its process group."""

    name: str
    dir: Path

    @property
    def record_path(self) -> Path:
        return self.dir / "run" / f"{self.name}.json"

    @property
    def log_path(self) -> Path:
        return self.dir / "logs" / f"{self.name}.log"

    def record(self) -> dict[str, Any]:
        try:
            data = json.loads(self.record_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def pid(self) -> int | None:
        """The pid, when the recorded process still runs."""
        rec = self.record()
        pid = rec.get("pid")
        if isinstance(pid, int) and _cmdline(pid) == rec.get("argv"):
            return pid
        return None

    def start(self, argv: Sequence[str], env: Mapping[str, str], **facts: Any) -> int:
        self.record_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%F %T')} starting {self.name}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=dict(env), cwd=REPO, start_new_session=True,
            )  # fmt: skip
        self.record_path.write_text(json.dumps({"pid": proc.pid, "argv": list(argv), **facts}, indent=2) + "\n")
        deadline = time.monotonic() + 5.0  # until exec: before it, /proc/<pid>/cmdline is still ours
        while _cmdline(proc.pid) != list(argv) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        return proc.pid

    def alive(self) -> bool:
        return self.pid() is not None

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM the process group, SIGKILL after ``timeout``. False when it was not running."""
        pid = self.pid()  # the record stays: its facts (e.g. the port) are reused by the next start
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _cmdline(pid) is not None and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        if _cmdline(pid) is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        return True

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


