"""Why the operator uses lightkube (+ its own aiohttp apply path) and not the official ``kubernetes`` client.

    .venv/bin/pip install kubernetes      # only for this measurement; not a dependency of modelgate
    .venv/bin/python bench/kube_clients.py [-n 300] [--json out.json]

1. Import cost, each in a fresh interpreter (median of 5): wall time of the import and the RSS it adds.
2. CPU per server-side apply: ``-n`` ConfigMaps (new, then the same again: no-op applies) applied one at a time
   to a throw-away etcd + kube-apiserver (``modelgate_dev.devcluster``) by (a) ``kubernetes`` (sync
   ``CoreV1Api.patch_namespaced_config_map`` with ``application/apply-patch+yaml``), (b) lightkube's
   ``AsyncClient.apply`` and (c) the operator's ``kubehttp.FastPath`` (aiohttp). Client CPU = this process's
   ``time.process_time()`` over the loop; the API server's CPU is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "proxy"), str(REPO / "operator"), str(REPO / "hack")]

IMPORTS = {
    "kubernetes": "import kubernetes.client, kubernetes.config",
    "lightkube": "import lightkube, lightkube.config.kubeconfig, lightkube.resources.core_v1",
    "aiohttp (kubehttp's; kopf loads it anyway)": "import aiohttp",
}
NAMESPACE = "default"
MANAGER = "bench"

_PROBE = """
import resource, sys, time
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize()
before = rss(); t = time.perf_counter()
{stmt}
print(time.perf_counter() - t, rss() - before)
"""


def import_cost(stmt: str, runs: int = 5) -> dict[str, float]:
    times, rss = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", _PROBE.format(stmt=stmt)], capture_output=True, text=True,
                             check=True, cwd=REPO).stdout.split()  # fmt: skip
        times.append(float(out[0]))
        rss.append(int(out[1]))
    return {"import_ms": round(statistics.median(times) * 1000, 1), "rss_mib": round(statistics.median(rss) / 2**20, 1)}


def configmap(prefix: str, i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{prefix}-{i}", "namespace": NAMESPACE},
            "data": {"endpoint.yaml": "x" * 512, "index": str(i)}}  # fmt: skip


def bench_kubernetes(kubeconfig: Path, n: int) -> list[float]:
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig)))
    out = []
    for _ in range(2):
        t = time.process_time()
        for i in range(n):
            api.patch_namespaced_config_map(f"k8s-{i}", NAMESPACE, configmap("k8s", i), field_manager=MANAGER,
                                            force=True, _content_type="application/apply-patch+yaml")  # fmt: skip
        out.append((time.process_time() - t) / n)
    return out


async def bench_lightkube(kubeconfig: Path, n: int) -> list[float]:
    from lightkube.resources.core_v1 import ConfigMap

    from modelgate_operator.kube import Kube

    os.environ["KUBECONFIG"] = str(kubeconfig)
    kube = Kube.from_env()  # lightkube as the operator configures it
    out = []
    for _ in range(2):
        t = time.process_time()
        for i in range(n):
            await kube.client.apply(ConfigMap.from_dict(configmap("lk", i)), field_manager=MANAGER, force=True)
        out.append((time.process_time() - t) / n)
    await kube.close()
    return out


async def bench_kubehttp(kubeconfig: Path, n: int) -> list[float]:
    from modelgate_operator import kubehttp
    from modelgate_operator.kube import Kube

    os.environ["KUBECONFIG"] = str(kubeconfig)
    kube = Kube.from_env()
    fast = kube.fast
    assert fast is not None, "this kubeconfig needs lightkube for every call"
    params = {"fieldManager": MANAGER, "force": "true"}
    out = []
    for _ in range(2):
        t = time.process_time()
        for i in range(n):
            path = kubehttp.object_path("v1", "configmaps", NAMESPACE, f"kh-{i}")
            await fast.patch(path, configmap("kh", i), "application/apply-patch+yaml", params)
        out.append((time.process_time() - t) / n)
    await kube.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="ConfigMaps per client (default 300)")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    result: dict[str, Any] = {"imports": {name: import_cost(stmt) for name, stmt in IMPORTS.items()}}
    from modelgate_dev.devcluster import DevCluster, find_bin_dir

    with DevCluster(bin_dir=find_bin_dir()) as cluster:
        kc = cluster.kubeconfig
        runs = {
            "kubernetes (sync)": bench_kubernetes(kc, args.n),
            "lightkube AsyncClient.apply": asyncio.run(bench_lightkube(kc, args.n)),
            "kubehttp FastPath (aiohttp)": asyncio.run(bench_kubehttp(kc, args.n)),
        }
    result["apply_cpu_ms"] = {k: {"create": round(v[0] * 1000, 3), "no_op": round(v[1] * 1000, 3)} for k, v in runs.items()}
    result["n"] = args.n
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
