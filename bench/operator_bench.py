"""Operator benchmark: N ServingEndpoints applied to the local control plane; how fast are they reconciled?

    .venv/bin/python bench/operator_bench.py [-n 1000] [--concurrency 16] [--rate 0] [--json out.json]

Starts a throw-away etcd + kube-apiserver (``modelgate_dev.devcluster``), installs the CRD and the
operator's namespaced RBAC, runs ``modelgate-operator run -n bench`` as a subprocess under its ServiceAccount
identity (as in production), creates one referenced Secret, then server-side applies N endpoints (each with
two served entities: one plaintext key, one ``{{secrets/...}}`` reference, a 90/10 split) from
``--concurrency`` concurrent clients, as fast as possible (or at ``--rate`` per second).

A CR counts as reconciled when a watch sees its ``status.observedGeneration`` equal to its generation with
``SecretsResolved=True``: the reconcile wrote the status after applying the four children. Per CR:
latency = that moment minus the moment its apply returned. At the end every child is counted.

Reported: time from the first apply to the last CR reconciled, apply duration, latency p50/p90/p99/max, the
operator's peak RSS (VmHWM) and CPU seconds, the CPU seconds etcd and kube-apiserver spent during the run, the
machine's load before and after (``uptime``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "proxy"), str(REPO / "operator"), str(REPO / "hack"), str(REPO)]

import yaml  # noqa: E402
from lightkube import AsyncClient  # noqa: E402
from lightkube.config.kubeconfig import KubeConfig  # noqa: E402
from lightkube.resources.apps_v1 import Deployment  # noqa: E402
from lightkube.resources.core_v1 import ConfigMap, Secret, Service  # noqa: E402
from lightkube.types import PatchType  # noqa: E402

from modelgate_dev.devcluster import DevCluster, find_bin_dir  # noqa: E402
from modelgate_operator.kube import ServingEndpoint  # noqa: E402

NAMESPACE = "bench"
RBAC = REPO / "operator" / "config" / "rbac"


def spec(i: int) -> dict[str, Any]:
    return {
        "servedEntities": [
            {"name": "gpt-4o", "externalModel": {
                "name": "gpt-4o", "provider": "openai", "task": "llm/v1/chat",
                "openaiConfig": {"openaiApiKeyPlaintext": f"sk-bench-{i:05d}", "openaiApiBase": "http://127.0.0.1:9/v1"},
            }},
            {"name": "claude", "externalModel": {
                "name": "claude-3-5-sonnet", "provider": "custom", "task": "llm/v1/chat",
                "customProviderConfig": {"customProviderUrl": "http://127.0.0.1:9/v1",
                                         "bearerTokenAuth": {"token": "{{secrets/bench-creds/token}}"}},
            }},
        ],
        "trafficConfig": {"routes": [{"servedEntityName": "gpt-4o", "trafficPercentage": 90},
                                     {"servedEntityName": "claude", "trafficPercentage": 10}]},
    }  # fmt: skip


def install_rbac(cluster: DevCluster) -> Path:
    for name in ("service_account.yaml", "role.yaml", "role_binding.yaml"):
        doc = yaml.safe_load((RBAC / name).read_text())
        doc["metadata"]["namespace"] = NAMESPACE
        for subject in doc.get("subjects", []):
            subject["namespace"] = NAMESPACE
        cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(doc))
    user = f"system:serviceaccount:{NAMESPACE}:modelgate-operator"
    return cluster.create_user_kubeconfig(user, ["system:serviceaccounts", f"system:serviceaccounts:{NAMESPACE}"])


def reconciled(obj: dict[str, Any]) -> bool:
    st = obj.get("status") or {}
    if st.get("observedGeneration") != obj["metadata"].get("generation"):
        return False
    return any(c.get("type") == "SecretsResolved" and c.get("status") == "True" for c in st.get("conditions") or [])


def proc_stats(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = {line.split(":")[0]: line.split(":")[1].strip() for line in status if ":" in line}
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return {
        "rss_mib": int(fields["VmRSS"].split()[0]) / 1024,
        "peak_rss_mib": int(fields["VmHWM"].split()[0]) / 1024,
        "cpu_s": (int(stat[11]) + int(stat[12])) / tick,
    }


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def run(args: argparse.Namespace, cluster: DevCluster, operator_pid: int) -> dict[str, Any]:
    client = AsyncClient(KubeConfig.from_file(cluster.kubeconfig), field_manager="bench")
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bench-creds", "namespace": NAMESPACE},
              "data": {"token": base64.b64encode(b"bench-token").decode()}}  # fmt: skip
    await client.patch(Secret, "bench-creds", secret, namespace=NAMESPACE, patch_type=PatchType.APPLY, force=True)

    applied: dict[str, float] = {}
    done: dict[str, float] = {}
    all_done = asyncio.Event()

    async def watch() -> None:
        async for _, obj in client.watch(ServingEndpoint, namespace=NAMESPACE):
            body = obj.to_dict()
            name = body["metadata"]["name"]
            if name not in done and reconciled(body):
                done[name] = time.monotonic()
                if len(done) == args.n:
                    all_done.set()
                    return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(1.0)  # the watch is established
    names = [f"ep-{i:05d}" for i in range(args.n)]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(args.n):
        queue.put_nowait(i)
    t0 = time.monotonic()

    async def applier() -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            if args.rate > 0:
                delay = t0 + i / args.rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            body = {"apiVersion": "serving.modelgate.io/v1alpha1", "kind": "ServingEndpoint",
                    "metadata": {"name": names[i], "namespace": NAMESPACE}, "spec": spec(i)}  # fmt: skip
            await client.patch(ServingEndpoint, names[i], body, namespace=NAMESPACE, patch_type=PatchType.APPLY,
                               force=True)  # fmt: skip
            applied[names[i]] = time.monotonic()

    samples: list[dict[str, float]] = []

    async def sampler() -> None:
        while not all_done.is_set():
            samples.append(proc_stats(operator_pid))
            await asyncio.sleep(1.0)

    sampling = asyncio.create_task(sampler())
    await asyncio.gather(*(applier() for _ in range(args.concurrency)))
    t_applied = time.monotonic() - t0
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_done.wait(), args.timeout)
    t_all = (max(done.values()) if done else time.monotonic()) - t0
    watcher.cancel()
    sampling.cancel()
    stats = proc_stats(operator_pid)
    latencies = [done[n] - applied[n] for n in names if n in done and n in applied]
    counts = {}
    for kind in (Secret, ConfigMap, Deployment, Service):
        counts[kind.__name__] = len([o async for o in client.list(kind, namespace=NAMESPACE,
                                                                  labels={"app.kubernetes.io/managed-by": "modelgate-operator"})])  # fmt: skip
    await client.close()
    return {
        "n": args.n,
        "concurrency": args.concurrency,
        "rate": args.rate,
        "reconciled": len(done),
        "apply_s": round(t_applied, 2),
        "all_reconciled_s": round(t_all, 2),
        "latency_p50_s": round(pct(latencies, 50), 3),
        "latency_p90_s": round(pct(latencies, 90), 3),
        "latency_p99_s": round(pct(latencies, 99), 3),
        "latency_max_s": round(max(latencies), 3) if latencies else None,
        "latency_mean_s": round(statistics.fmean(latencies), 3) if latencies else None,
        "operator_rss_mib": round(stats["rss_mib"], 1),
        "operator_peak_rss_mib": round(max([stats["peak_rss_mib"], *(s["peak_rss_mib"] for s in samples)]), 1),
        "operator_cpu_s": round(stats["cpu_s"], 1),
        "children": counts,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=1000, help="ServingEndpoints to apply (default 1000)")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent appliers (default 16)")
    parser.add_argument("--rate", type=float, default=0, help="applies per second (default 0: as fast as possible)")
    parser.add_argument("--timeout", type=float, default=300, help="give up waiting after this many seconds")
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--operator-arg", action="append", default=[], help="extra `modelgate-operator run` arg")
    parser.add_argument("--profile", type=Path, help="run the operator under cProfile, writing stats here")
    args = parser.parse_args()

    load_before = uptime()
    with DevCluster(bin_dir=find_bin_dir()) as cluster:
        cluster.install_crds(REPO / "crds")
        cluster.kubectl("create", "namespace", NAMESPACE)
        kubeconfig = install_rbac(cluster)
        log = Path(tempfile.mkdtemp(prefix="operator-bench-")) / "operator.log"
        env = {**os.environ, "KUBECONFIG": str(kubeconfig),
               "PYTHONPATH": os.pathsep.join([str(REPO / "proxy"), str(REPO / "operator")])}  # fmt: skip
        with log.open("wb") as out:
            profile = ["-m", "cProfile", "-o", str(args.profile)] if args.profile else []
            op = subprocess.Popen([sys.executable, *profile, "-m", "modelgate_operator.cli", "run", "-n", NAMESPACE,
                                   *args.operator_arg], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)  # fmt: skip
        try:
            time.sleep(3)  # operator started and watching
            if op.poll() is not None:
                print(log.read_text()[-3000:], file=sys.stderr)
                return 1
            before = {name: proc_stats(pid)["cpu_s"] for name, pid in cluster.pids.items()}
            result = asyncio.run(run(args, cluster, op.pid))
            result["control_plane_cpu_s"] = {
                name: round(proc_stats(pid)["cpu_s"] - before[name], 1) for name, pid in cluster.pids.items()
            }
        finally:
            op.terminate()
            try:
                op.wait(15)
            except subprocess.TimeoutExpired:
                op.kill()
                op.wait()
    result["load_before"] = load_before
    result["load_after"] = uptime()
    result["operator_log"] = str(log)
    result["errors_in_log"] = sum(1 for line in log.read_text(errors="replace").splitlines() if '"ERROR"' in line
                                  or "Traceback" in line)  # fmt: skip
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["reconciled"] == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
