"""What a node changes on the host, recorded before it starts and restored after it stops.

kubelet sets sysctls (``vm.overcommit_memory``, ``kernel.panic``, ``kernel.panic_on_oops``, ...) and adds
``KUBE-*`` iptables chains; the CNI bridge plugin turns on IP forwarding; containerd and CNI leave network
namespaces, mounts, cgroups and directories. ``HostSnapshot.take()`` records the current values,
``restore()`` puts back every sysctl that changed, deletes only chains that did not exist before and were
made by Kubernetes, and ``leftovers()`` lists what still differs (the teardown test asserts it is empty).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

SYSCTLS = (
    "vm.overcommit_memory",
    "vm.panic_on_oom",
    "kernel.panic",
    "kernel.panic_on_oops",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.forwarding",
    "net.bridge.bridge-nf-call-iptables",
)
"""The sysctls kubelet (and the CNI bridge) may change; missing ones are skipped."""
IPTABLES = ("iptables-legacy", "iptables-nft", "ip6tables-legacy", "ip6tables-nft")
TABLES = ("filter", "nat", "mangle")
OWNED_CHAIN = re.compile(r"^(KUBE-|CNI-)")
"""Only chains with these prefixes are ever deleted (kubelet's and the CNI plugins'), never anyone else's."""
CREATED_PATHS = ("/var/lib/kubelet", "/var/lib/cni", "/run/containerd", "/run/netns", "/var/run/netns")


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctls() -> dict[str, str]:
    out: dict[str, str] = {}
    for name in SYSCTLS:
        with contextlib.suppress(OSError):
            out[name] = _sysctl_path(name).read_text().strip()
    return out


def netdevs() -> list[str]:
    return sorted(p.name for p in Path("/sys/class/net").iterdir())


def mounts() -> list[str]:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        out.append(line.split()[4].replace("\\040", " "))
    return sorted(set(out))


def iptables_chains() -> dict[str, list[str]]:
    """``{"iptables-nft/filter": ["INPUT", ...], ...}`` for every iptables variant installed."""
    out: dict[str, list[str]] = {}
    for tool in IPTABLES:
        exe = shutil.which(tool)
        if exe is None:
            continue
        for table in TABLES:
            res = subprocess.run([exe, "-w", "5", "-t", table, "-S"], capture_output=True, text=True, timeout=30)
            if res.returncode != 0:
                continue
            out[f"{tool}/{table}"] = sorted(
                line.split()[1] for line in res.stdout.splitlines() if line.startswith(("-N ", "-P "))
            )
    return out


def cgroups(names: tuple[str, ...]) -> list[str]:
    root = Path("/sys/fs/cgroup")
    if not root.is_dir():
        return []
    return sorted(str(c / n) for c in root.iterdir() for n in names if (c / n).is_dir())


@dataclass
class HostSnapshot:
    sysctls: dict[str, str] = field(default_factory=dict)
    netdevs: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    chains: dict[str, list[str]] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)

    @classmethod
    def take(cls, cgroup_names: tuple[str, ...]) -> HostSnapshot:
        return cls(
            sysctls=read_sysctls(), netdevs=netdevs(), mounts=mounts(), chains=iptables_chains(),
            paths=[p for p in CREATED_PATHS if Path(p).exists()], cgroups=cgroups(cgroup_names),
        )  # fmt: skip

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: Path) -> HostSnapshot:
        return cls(**json.loads(path.read_text()))

    # ------------------------------------------------------------------ restore
    def restore_sysctls(self) -> list[str]:
        changed = []
        now = read_sysctls()
        for name, value in self.sysctls.items():
            if now.get(name) != value:
                with contextlib.suppress(OSError):
                    _sysctl_path(name).write_text(value)
                changed.append(f"{name}: {now.get(name)} -> {value}")
        return changed

    def restore_iptables(self) -> list[str]:
        """Delete the ``KUBE-*``/``CNI-*`` chains that did not exist before (rules jumping to them first)."""
        removed = []
        now = iptables_chains()
        for key, chains in now.items():
            tool, table = key.split("/")
            new = [c for c in chains if c not in self.chains.get(key, []) and OWNED_CHAIN.match(c)]
            if not new:
                continue
            exe = shutil.which(tool) or tool
            rules = subprocess.run([exe, "-w", "5", "-t", table, "-S"], capture_output=True, text=True,
                                   timeout=30).stdout.splitlines()  # fmt: skip
            for rule in rules:
                parts = rule.split()
                jumps = {parts[i + 1] for i, p in enumerate(parts[:-1]) if p in ("-j", "-g")}
                # rules jumping into a new chain go; rules inside a new chain go with it
                if parts[:1] == ["-A"] and jumps & set(new) and parts[1] not in new:
                    subprocess.run([exe, "-w", "5", "-t", table, "-D", *parts[1:]], capture_output=True, timeout=30)
            for chain in new:
                subprocess.run([exe, "-w", "5", "-t", table, "-F", chain], capture_output=True, timeout=30)
            for chain in new:
                subprocess.run([exe, "-w", "5", "-t", table, "-X", chain], capture_output=True, timeout=30)
                removed.append(f"{key} {chain}")
        return removed

    def remove_created_paths(self, keep_if_not_empty: tuple[str, ...] = ()) -> list[str]:
        """Remove the well-known directories that kubelet, containerd and CNI created outside the state dir."""
        removed = []
        for p in CREATED_PATHS:
            path = Path(p)
            if p in self.paths or not path.exists() or path.is_symlink():
                continue
            if p in keep_if_not_empty and any(path.iterdir()):
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(p)
        return removed

    # ------------------------------------------------------------------ check
    def leftovers(self, cgroup_names: tuple[str, ...]) -> list[str]:
        """What differs from the snapshot now, as readable lines (empty when the host is as it was)."""
        out: list[str] = []
        now_sysctls = read_sysctls()
        out += [f"sysctl {k}={now_sysctls.get(k)} (was {v})" for k, v in self.sysctls.items() if now_sysctls.get(k) != v]
        out += [f"network device {d}" for d in netdevs() if d not in self.netdevs]
        out += [f"mount {m}" for m in mounts() if m not in self.mounts]
        for key, chains in iptables_chains().items():
            out += [f"iptables {key} chain {c}" for c in chains if c not in self.chains.get(key, [])]
        out += [f"path {p}" for p in CREATED_PATHS if Path(p).exists() and p not in self.paths]
        out += [f"cgroup {c}" for c in cgroups(cgroup_names) if c not in self.cgroups]
        return out
