"""Start the node's daemons detached (own session, log file, pid recorded) and stop them by pid only."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class NodeError(RuntimeError):
    """A node component failed to start or to become ready (the message carries its log tail)."""


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        data = path.read_bytes()[-12000:].decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(data.splitlines()[-lines:])


def spawn(name: str, argv: Sequence[str], log_dir: Path, env: dict[str, str] | None = None,
          executable: str | None = None) -> int:  # fmt: skip
    """Start ``argv`` in its own session, stdout/stderr to ``log_dir/<name>.log``; returns the pid.
    Not tied to this process: the node outlives it for ``make up``; ``stop_pid`` ends it. With ``executable``,
    ``argv[0]`` is only the name the process shows (so it can be told apart from other Pythons)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / f"{name}.log").open("ab") as log:
        log.write(f"\n=== {time.strftime('%F %T')} {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env, executable=executable)  # fmt: skip
    return proc.pid


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def alive(pid: int, exe_name: str | None = None) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    if state in ("Z", "X"):
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
        return False
    argv = cmdline(pid)
    return exe_name is None or (bool(argv) and Path(argv[0]).name == exe_name)


def stop_pid(pid: int, exe_name: str, timeout: float = 15.0) -> bool:
    """SIGTERM ``pid`` (only if it still runs ``exe_name``: never a recycled pid), SIGKILL after ``timeout``."""
    if not alive(pid, exe_name):
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        if not alive(pid):
            return True
    return not alive(pid)


def pids_matching(pred: Callable[[list[str]], bool]) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and pred(cmdline(int(d.name))):
            out.append(int(d.name))
    return out


def wait_until(what: str, ready: Callable[[], bool], timeout: float, log: Path | None = None,
               pid: int | None = None) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not ready():
        # only "is it still there": right after the start its cmdline may not show the new program yet (seen
        # under load), and this pid was just started by us, so it cannot be a recycled one
        if pid is not None and not alive(pid):
            raise NodeError(f"{what}: the process exited; {log} ends with:\n{log_tail(log) if log else ''}")
        if time.monotonic() > deadline:
            raise NodeError(f"{what}: not ready after {timeout:.0f}s; {log} ends with:\n{log_tail(log) if log else ''}")
        time.sleep(0.2)
