"""A real ``redis-server`` for the tests: installed from Debian's packages when it is not on PATH, started on a
free loopback port with its own directory (no persistence), stoppable and restartable on the same port (outage
tests), stopped at the end of the session."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from tests.standins.server import free_port

APT_LOCK_WAIT = "DPkg::Lock::Timeout=120"


def redis_server_binary() -> str:
    """The path of ``redis-server``, installing Debian's package first when it is missing (apt may be busy with
    another install: it waits for the lock, and the whole install is tried three times)."""
    found = shutil.which("redis-server")
    if found:
        return found
    for attempt in range(3):
        result = subprocess.run(["apt-get", "install", "-y", "-o", APT_LOCK_WAIT, "redis-server"],
                                capture_output=True, text=True, timeout=600, check=False)
        if result.returncode != 0 and "Unable to locate package" in result.stderr:
            subprocess.run(["apt-get", "update", "-o", APT_LOCK_WAIT], capture_output=True, timeout=600, check=False)
        found = shutil.which("redis-server")
        if found:
            return found
        time.sleep(5 * (attempt + 1))
    raise RuntimeError(f"redis-server is not installed and apt-get could not install it: {result.stderr[-500:]}")


class RedisServer:
    def __init__(self, workdir: Path, *, password: str | None = None) -> None:
        self.binary = redis_server_binary()
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.password = password
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password, socket_timeout=2)

    def start(self) -> None:
        if self._process is not None:
            return
        argv = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.workdir),
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
        if self.password is not None:
            argv += ["--requirepass", self.password]
        log = (self.workdir / "redis.log").open("ab")
        self._process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {(self.workdir / 'redis.log').read_text()[-500:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # the port is free again before a restart binds it
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.05)

    def flush(self) -> None:
        self.client().flushall()
