"""A private dockerd for image builds: its own socket, data root, exec root, pidfile and cgroup parent, no
bridge and no iptables rules (builds use ``--network host``). Reuses a dockerd that already answers on
``DOCKER_HOST`` / the default socket; otherwise starts one and stops it afterwards.

    with Dockerd() as docker:
        docker.run("build", ...)
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

from ..timing import step
from .cache import cache_root

RUN_DIR = Path("/run/modelgate-docker")
CGROUP_PARENT = "modelgate-docker"
CGROUP_ROOT = Path("/sys/fs/cgroup")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0


class DockerError(RuntimeError):
    """dockerd could not be started, or a docker command failed (the message carries its output)."""


class Dockerd:
    def __init__(self, data_root: Path | None = None) -> None:
        self.data_root = data_root or cache_root() / "docker"
        self.socket = RUN_DIR / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.log = cache_root() / "docker.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Dockerd:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def run(self, *args: str, input: bytes | None = None, timeout: float = 1800.0) -> str:
        docker = shutil.which("docker") or "docker"
        res = subprocess.run(
            [docker, "-H", self.host, *args], input=input, capture_output=True, timeout=timeout,
            env={**os.environ, "DOCKER_BUILDKIT": "0"},
        )  # fmt: skip
        if res.returncode != 0:
            out = (res.stdout + res.stderr).decode(errors="replace")[-4000:]
            raise DockerError(f"docker {' '.join(args[:3])} failed (exit {res.returncode}):\n{out}")
        return res.stdout.decode(errors="replace")

    def _answers(self) -> bool:
        docker = shutil.which("docker")
        if docker is None or not self.socket.exists():
            return False
        res = subprocess.run([docker, "-H", self.host, "version"], capture_output=True, timeout=20)
        return res.returncode == 0

    def start(self) -> None:
        if self._answers():
            return  # ours from an earlier, interrupted run, or shared: leave it running
        dockerd = shutil.which("dockerd") or "/usr/sbin/dockerd"
        if not os.access(dockerd, os.X_OK):
            raise DockerError("dockerd not installed (bash hack/node-packages.sh installs docker.io)")
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        log = self.log.open("ab")
        args = [
            dockerd, f"--host={self.host}", f"--data-root={self.data_root}", f"--exec-root={RUN_DIR / 'exec'}",
            f"--pidfile={RUN_DIR / 'dockerd.pid'}", "--bridge=none", "--iptables=false", "--ip-masq=false",
            "--ip-forward=false", "--exec-opt=native.cgroupdriver=cgroupfs", f"--cgroup-parent=/{CGROUP_PARENT}",
            "--storage-driver=overlay2", "--log-level=warn",
        ]  # fmt: skip
        with step("images", "starting a private dockerd"):
            self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                          start_new_session=True)  # fmt: skip
            deadline = time.monotonic() + START_TIMEOUT
            while not self._answers():
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    tail = self.log.read_bytes()[-3000:].decode(errors="replace")
                    self.stop()
                    raise DockerError(f"dockerd did not start; {self.log} ends with:\n{tail}")
                time.sleep(0.3)

    def stop(self) -> None:
        """Stop the dockerd this object started (with its managed containerd) and remove its cgroups."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)
        for controller in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else ():
            remove_cgroup_tree(controller / CGROUP_PARENT)
        unmount_under(RUN_DIR)  # dockerd leaves exec-root/netns/default bind-mounted
        shutil.rmtree(RUN_DIR, ignore_errors=True)  # socket, pidfile, exec root (all ours)


def unmount_under(directory: Path) -> list[str]:
    """Unmount every mount point below ``directory``, deepest first (lazily if busy)."""
    prefix = str(directory).rstrip("/") + "/"
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    done = []
    for mnt in sorted({m for m in points if m.startswith(prefix)}, key=len, reverse=True):
        if subprocess.run(["umount", mnt], capture_output=True, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", mnt], capture_output=True, timeout=30)
        done.append(mnt)
    return done


def remove_cgroup_tree(path: Path) -> None:
    """rmdir a cgroup directory and its children, deepest first (cgroupfs allows only rmdir)."""
    if not path.is_dir():
        return
    for sub in sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            sub.rmdir()
    with contextlib.suppress(OSError):
        path.rmdir()
