"""A real, throw-away Kubernetes control plane (etcd + kube-apiserver) for tests and local use.

Envtest-style: no kubelet, no controller-manager (so no garbage collector, namespaces stay
Terminating, no default ServiceAccount). Binaries come from ``hack/k8s-tools.sh`` (built once from Go
modules and cached) or from the directory in ``MODELGATE_K8S_BIN``.

    with DevCluster() as cluster:             # temp dir, removed by stop()
        cluster.kubectl("get", "ns")

    python -m modelgate_dev.devcluster up --dir .dev     # detached, state kept in .dev
    python -m modelgate_dev.devcluster down --dir .dev [--purge]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .devcluster_pki import Pki, write_kubeconfig

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_SCRIPT = REPO_ROOT / "hack" / "k8s-tools.sh"

SERVICE_CIDR = "10.0.0.0/16"
"""Room for 65k ClusterIPs: one Service per ServingEndpoint (a /24 runs out after 253, e.g. in the benchmark)."""
_PR_SET_PDEATHSIG = 1
_TEMP_PREFIX = "modelgate-k8s-"
MAX_CN_LENGTH = 64
"""X.509 ``ub-common-name``: a client certificate's CN (the Kubernetes user name) has at most 64 characters."""


class DevClusterError(RuntimeError):
    """The control plane could not be started (the message carries the relevant log tail)."""


class K8sToolsError(DevClusterError):
    """The etcd/kube-apiserver/kubectl binaries are not available and could not be built."""


class KubectlError(subprocess.CalledProcessError):
    def __str__(self) -> str:
        return f"{super().__str__()}\nstdout: {self.stdout}\nstderr: {self.stderr}"


# --------------------------------------------------------------------------------------------- binaries


def find_bin_dir(tools: Sequence[str] = ("etcd", "kube-apiserver", "kubectl")) -> Path:
    """Directory holding ``tools``: ``$MODELGATE_K8S_BIN``, else whatever ``hack/k8s-tools.sh`` prints
    (it builds missing tools first, which takes minutes the very first time)."""
    override = os.environ.get("MODELGATE_K8S_BIN")
    if override:
        bin_dir = Path(override)
    else:
        if not TOOLS_SCRIPT.is_file():
            raise K8sToolsError(f"{TOOLS_SCRIPT} not found; set MODELGATE_K8S_BIN to a dir with {tools}")
        proc = subprocess.Popen(
            ["bash", str(TOOLS_SCRIPT), *tools], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        tail: collections.deque[str] = collections.deque(maxlen=40)
        assert proc.stderr is not None
        assert proc.stdout is not None
        for line in proc.stderr:  # relay progress (builds are slow) and keep the tail for errors
            tail.append(line)
            if line.startswith("k8s-tools:"):
                print(line, end="", file=sys.stderr)
        out = proc.stdout.read().strip()
        if proc.wait() != 0 or not out:
            raise K8sToolsError(f"{TOOLS_SCRIPT} failed (exit {proc.returncode}):\n{''.join(tail)}")
        bin_dir = Path(out.splitlines()[-1])
    missing = [t for t in tools if not os.access(bin_dir / t, os.X_OK)]
    if missing:
        raise K8sToolsError(f"{bin_dir} lacks executable {missing}")
    return bin_dir




def _free_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # like Go servers: TIME_WAIT is fine
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _die_with_parent() -> None:  # runs in the child between fork and exec (Linux only)
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def pid_alive(pid: int, exe: Path | None = None) -> bool:
    """True if ``pid`` runs (not a zombie) and, when ``exe`` is given, runs that executable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
        return False
    return exe is None or Path(argv0).name == exe.name


def _sweep_stale_temp_dirs() -> None:
    """Remove temp state dirs left by killed processes (etcd preallocates ~120 MB of WAL per dir).
    Their etcd/apiserver died with them (PR_SET_PDEATHSIG)."""
    for d in Path(tempfile.gettempdir()).glob(f"{_TEMP_PREFIX}*"):
        try:
            owner = int((d / "owner.pid").read_text())
        except (OSError, ValueError):
            continue
        if not pid_alive(owner):
            shutil.rmtree(d, ignore_errors=True)


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class DevCluster:
    """etcd + kube-apiserver on free loopback ports, admin kubeconfig, non-admin user kubeconfigs.

    ``state_dir=None``: everything lives in a temp dir that ``stop()`` removes, and the processes are
    killed when this process dies (PR_SET_PDEATHSIG; only when started from the main thread). With a
    ``state_dir`` the data (etcd, PKI, kubeconfigs, logs, ``state.json`` with pids/ports) persists
    across stop()/start(); ``detached=True`` lets the processes outlive this Python process (``up`` /
    ``down`` CLI). Logs: ``<dir>/logs/{etcd,kube-apiserver}.log``.
    """

    def __init__(
        self,
        state_dir: Path | str | None = None,
        *,
        bin_dir: Path | None = None,
        detached: bool = False,
        timeout: float = 120.0,
        extra_apiserver_args: Sequence[str] = (),
        service_accounts: bool = False,
        serving_ips: Sequence[str] = (),
    ) -> None:
        self._persistent = state_dir is not None
        self._state_dir = Path(state_dir).resolve() if state_dir is not None else None
        self._bin_dir = bin_dir
        self.detached = detached
        self.timeout = timeout
        self.extra_apiserver_args = list(extra_apiserver_args)
        self.service_accounts = service_accounts
        """With a controller-manager (the real node) pods get ServiceAccount tokens: keep that admission plugin."""
        self.serving_ips = list(serving_ips)
        """Extra IP addresses in the API server's certificate (the real node's relay address for pods)."""
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._pids: dict[str, int] = {}
        self.ports: dict[str, int] = {}

    # ----------------------------------------------------------------- paths & public attributes
    @property
    def dir(self) -> Path:
        if self._state_dir is None:
            raise DevClusterError("cluster not started")
        return self._state_dir

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_bin_dir()
        return self._bin_dir

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    @property
    def pids(self) -> dict[str, int]:
        return dict(self._pids)

    @property
    def logs(self) -> Path:
        return self.dir / "logs"

    def env(self, kubeconfig: Path | None = None) -> dict[str, str]:
        """os.environ + KUBECONFIG (and this cluster's bin dir first on PATH) for subprocesses."""
        return {
            **os.environ,
            "KUBECONFIG": str(kubeconfig or self.kubeconfig),
            "KUBECACHEDIR": str(self.dir / "kube-cache"),
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    # ----------------------------------------------------------------- lifecycle
    def __enter__(self) -> DevCluster:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> DevCluster:
        if self._procs or self._pids:
            raise DevClusterError("already started")
        bin_dir = self.bin_dir  # may build (slow, first time only)
        if self._state_dir is None:
            _sweep_stale_temp_dirs()
            self._state_dir = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX))
            (self._state_dir / "owner.pid").write_text(f"{os.getpid()}\n")
        else:
            self._state_dir.mkdir(parents=True, exist_ok=True)
            (self._state_dir / ".gitignore").write_text("*\n")
            running = {k: v for k, v in self._read_state().get("pids", {}).items() if pid_alive(v, Path(k))}
            if running:
                raise DevClusterError(f"a cluster is already running from {self._state_dir}: {running}")
        try:
            self.logs.mkdir(exist_ok=True)
            pki = Pki(self.dir / "pki", self.serving_ips)
            self._pick_ports()
            for attempt in range(3):
                try:
                    self._spawn("etcd", bin_dir / "etcd", self._etcd_args())
                    self._wait_etcd()
                    self._spawn("kube-apiserver", bin_dir / "kube-apiserver", self._apiserver_args(pki))
                    self._wait_apiserver(pki)
                    break
                except DevClusterError as e:
                    self._kill_all()
                    if "address already in use" not in str(e) or attempt == 2:
                        raise
                    self.ports = dict(zip(("etcd", "etcd-peer", "apiserver"), _free_ports(3), strict=True))
            cert, key = pki.client_cert("admin", ["system:masters"])
            write_kubeconfig(self.kubeconfig, self.server, pki.path("ca.crt").read_bytes(), "admin", cert, key)
            self._write_state()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate the process groups (apiserver first), reap them, and remove a temp state dir."""
        self._kill_all()
        if self._state_dir is not None:
            if self._persistent:
                if self._state_dir.exists():
                    self._write_state()
            else:
                shutil.rmtree(self._state_dir, ignore_errors=True)
                self._state_dir = None

    @classmethod
    def attach(cls, state_dir: Path | str) -> DevCluster:
        """A handle on a cluster started (detached) from ``state_dir`` by another process."""
        cluster = cls(state_dir, detached=True)
        state = cluster._read_state()
        if not state:
            raise DevClusterError(f"no cluster state in {state_dir}")
        cluster.ports = {k: int(v) for k, v in state["ports"].items()}
        cluster._pids = {k: int(v) for k, v in state.get("pids", {}).items()}
        if state.get("bin_dir"):
            cluster._bin_dir = Path(state["bin_dir"])
        return cluster

    def running(self) -> bool:
        return bool(self._pids) and all(pid_alive(pid, Path(name)) for name, pid in self._pids.items())

    # ----------------------------------------------------------------- clients
    def kubectl(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        kubeconfig: Path | None = None,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this cluster (admin unless ``kubeconfig`` is given).
        ``check=True`` raises :class:`KubectlError` (whose message includes stderr) on failure."""
        cmd = [str(self.bin_dir / "kubectl"), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args]
        res = subprocess.run(
            cmd, input=input, capture_output=True, text=True, timeout=timeout, env=self.env(kubeconfig)
        )
        if check and res.returncode != 0:
            raise KubectlError(res.returncode, cmd, res.stdout, res.stderr)
        return res

    def create_user_kubeconfig(self, name: str, groups: Sequence[str] = ()) -> Path:
        """Kubeconfig for a client-cert user ``name`` in ``groups`` (no rights until RBAC grants some).

        The user name is the certificate's CN, which X.509 caps at 64 characters: a longer name (e.g.
        ``system:serviceaccount:<namespace>:<sa>`` with a long namespace) raises :class:`DevClusterError`."""
        if len(name) > MAX_CN_LENGTH:
            raise DevClusterError(
                f"user name {name!r} is {len(name)} characters; a client certificate's CN holds at most "
                f"{MAX_CN_LENGTH} (shorten the namespace or ServiceAccount name)"
            )
        too_long = [g for g in groups if len(g) > MAX_CN_LENGTH]
        if too_long:
            raise DevClusterError(f"group names over {MAX_CN_LENGTH} characters cannot be certified: {too_long}")
        pki = Pki(self.dir / "pki")
        cert, key = pki.client_cert(name, groups)
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        return write_kubeconfig(
            self.dir / "users" / f"{safe}.kubeconfig",
            self.server,
            pki.path("ca.crt").read_bytes(),
            name,
            cert,
            key,
        )

    def install_crds(self, crd_dir: Path, timeout: float = 60.0) -> list[str]:
        """Server-side apply ``crd_dir/*.yaml``; wait until every CRD in them is Established. Returns their names."""
        files = sorted(crd_dir.glob("*.yaml"))
        if not files:
            return []
        file_args = [a for f in files for a in ("-f", str(f))]
        applied = self.kubectl("apply", "--server-side", "--force-conflicts", "-o", "name", *file_args)
        crds = [n for n in applied.stdout.split() if n.startswith("customresourcedefinition")]
        deadline = time.monotonic() + timeout
        for crd in crds:  # `kubectl wait` fails outright while .status.conditions is still unset, so poll
            while True:
                got = self.kubectl(
                    "get", crd, "-o", 'jsonpath={.status.conditions[?(@.type=="Established")].status}', check=False
                )
                if got.stdout.strip() == "True":
                    break
                if time.monotonic() > deadline:
                    raise DevClusterError(f"{crd} not Established after {timeout:.0f} s: {got.stderr.strip()}")
                time.sleep(0.1)
        return crds

    # ----------------------------------------------------------------- internals
    def _read_state(self) -> dict[str, Any]:
        path = self.dir / "state.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write_state(self) -> None:
        state = {
            "server": self.server if self.ports else None,
            "ports": self.ports,
            "pids": self._pids,
            "bin_dir": str(self._bin_dir) if self._bin_dir else None,
            "kubeconfig": str(self.kubeconfig),
        }
        (self.dir / "state.json").write_text(json.dumps(state, indent=2) + "\n")

    def _pick_ports(self) -> None:
        old = {k: int(v) for k, v in self._read_state().get("ports", {}).items()}
        if self._persistent and len(old) == 3 and all(_port_free(p) for p in old.values()):
            self.ports = old  # keep the kubeconfig URL and SA issuer stable across restarts
        else:
            self.ports = dict(zip(("etcd", "etcd-peer", "apiserver"), _free_ports(3), strict=True))

    def _etcd_args(self) -> list[str]:
        client = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        return [
            "--name=default", f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}", "--unsafe-no-fsync=true",
        ]  # fmt: skip

    def _apiserver_args(self, pki: Pki) -> list[str]:
        p = pki.path
        return [
            f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
            f"--cert-dir={self.dir / 'pki'}",
            f"--tls-cert-file={p('apiserver.crt')}", f"--tls-private-key-file={p('apiserver.key')}",
            f"--client-ca-file={p('client-ca.crt')}",
            f"--secure-port={self.ports['apiserver']}", "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1", "--endpoint-reconciler-type=none",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--allow-privileged=true",
            "--authorization-mode=Node,RBAC",
            *(() if self.service_accounts else ("--disable-admission-plugins=ServiceAccount",)),
            f"--service-account-issuer=https://127.0.0.1:{self.ports['apiserver']}",
            f"--service-account-key-file={p('sa.pub')}", f"--service-account-signing-key-file={p('sa.key')}",
            "--profiling=false",
            *self.extra_apiserver_args,
        ]  # fmt: skip

    def _spawn(self, name: str, exe: Path, args: list[str]) -> None:
        log: IO[bytes]
        with (self.logs / f"{name}.log").open("ab") as log:
            log.write(f"\n=== {time.strftime('%F %T')} {exe} {' '.join(args)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                [str(exe), *args],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: stop() kills the whole group
                preexec_fn=_die_with_parent if self._tie_to_parent() else None,
                cwd=self.dir,
            )  # fmt: skip
        self._procs[name] = proc
        self._pids[name] = proc.pid
        if self._persistent:
            self._write_state()

    def _tie_to_parent(self) -> bool:
        # PR_SET_PDEATHSIG fires when the *thread* that forked exits, so only tie from the main thread.
        main = threading.current_thread() is threading.main_thread()
        return not self.detached and sys.platform == "linux" and main

    def _check_alive(self, name: str) -> None:
        proc = self._procs[name]
        if proc.poll() is not None:
            log = self.logs / f"{name}.log"
            raise DevClusterError(f"{name} exited with {proc.returncode}; {log} ends with:\n{_log_tail(log)}")

    def _wait(self, name: str, probe: urllib.request.Request, ctx: ssl.SSLContext | None) -> None:
        deadline = time.monotonic() + self.timeout
        last = ""
        handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]  # loopback: no proxy
        if ctx is not None:
            handlers.append(urllib.request.HTTPSHandler(context=ctx))
        opener = urllib.request.build_opener(*handlers)
        while time.monotonic() < deadline:
            self._check_alive(name)
            try:
                with opener.open(probe, timeout=5) as resp:
                    body = resp.read().decode(errors="replace")
                    if resp.status == 200:
                        return
                    last = body
            except (urllib.error.URLError, OSError) as e:
                last = str(e)
            time.sleep(0.1)
        log = self.logs / f"{name}.log"
        raise DevClusterError(f"{name} not ready after {self.timeout}s ({last}); {log}:\n{_log_tail(log)}")

    def _wait_etcd(self) -> None:
        self._wait("etcd", urllib.request.Request(f"http://127.0.0.1:{self.ports['etcd']}/health"), None)

    def _wait_apiserver(self, pki: Pki) -> None:
        ctx = ssl.create_default_context(cafile=str(pki.path("ca.crt")))
        self._wait("kube-apiserver", urllib.request.Request(f"{self.server}/readyz"), ctx)  # noqa: S310

    def _kill_all(self) -> None:
        for name in ("kube-apiserver", "etcd"):
            proc, pid = self._procs.pop(name, None), self._pids.pop(name, None)
            if pid is None:
                continue
            if proc is None and not pid_alive(pid, Path(name)):
                continue  # not ours (anymore): never signal a recycled pid
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
            if not self._reap(pid, proc, 10.0):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                self._reap(pid, proc, 10.0)

    @staticmethod
    def _reap(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout
        while pid_alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


# --------------------------------------------------------------------------------------------- CLI


def link_tools(cluster: DevCluster) -> Path:
    bin_link = cluster.dir / "bin"
    bin_link.mkdir(exist_ok=True)
    for tool in ("kubectl", "helm", "etcd", "kube-apiserver"):
        src, dst = cluster.bin_dir / tool, bin_link / tool
        if src.exists():
            dst.unlink(missing_ok=True)
            dst.symlink_to(src)
    return bin_link


def _usage(cluster: DevCluster, state_dir: str) -> str:
    return (
        f"modelgate dev cluster: {cluster.server} (state: {cluster.dir}, logs: {cluster.logs})\n"
        f"  export KUBECONFIG={cluster.kubeconfig}\n"
        f"  export PATH={cluster.dir / 'bin'}:$PATH      # kubectl (and helm) built for it\n"
        f"  kubectl get ns\n"
        f"stop it with: python -m modelgate_dev.devcluster down --dir {state_dir}  (or hack/down.sh)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelgate_dev.devcluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="cmd", required=True)
    for cmd in ("up", "down", "status", "kubeconfig"):
        p = sub.add_parser(cmd)
        p.add_argument("--dir", default=".dev", help="state directory (default: .dev)")
        if cmd == "down":
            p.add_argument("--purge", action="store_true", help="also delete the state directory")
        if cmd == "up":
            p.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    state_dir = Path(args.dir)

    if args.cmd == "up":
        with contextlib.suppress(DevClusterError):
            existing = DevCluster.attach(state_dir)
            if existing.running():
                print(f"already running\n{_usage(existing, args.dir)}")
                return 0
            existing.stop()  # half-dead leftovers
        cluster = DevCluster(state_dir, detached=True, timeout=args.timeout)
        started = time.monotonic()
        try:
            cluster.start()
        except DevClusterError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        link_tools(cluster)
        print(f"started in {time.monotonic() - started:.1f}s\n{_usage(cluster, args.dir)}")
        return 0
    try:
        cluster = DevCluster.attach(state_dir)
    except DevClusterError:
        if args.cmd == "down" and args.purge:
            shutil.rmtree(state_dir, ignore_errors=True)
        print(f"no dev cluster state in {state_dir}", file=sys.stderr)
        return 0 if args.cmd == "down" else 1
    if args.cmd == "down":
        cluster.stop()
        if args.purge:
            shutil.rmtree(cluster.dir, ignore_errors=True)
        print(f"stopped{' and purged' if args.purge else ''} {cluster.dir}")
    elif args.cmd == "kubeconfig":
        print(cluster.kubeconfig)
    else:
        up = cluster.running()
        print(f"{'running' if up else 'stopped'}: {cluster.server} pids={cluster.pids}")
        return 0 if up else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
