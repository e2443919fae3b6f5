"""A throw-away control plane for the gateway benchmark (bench/profiles/gateway.sh and endpoint-proxy.sh).

    .venv/bin/python bench/kube_plane.py --out DIR --endpoints FILE --secrets-dir DIR [--namespace bench]
                                         [--extra 200]

Starts a real etcd + kube-apiserver with the project's dev tooling (hack/modelgate_dev/devcluster.py, the one the
tests use; binaries from ~/.cache/modelgate via hack/k8s-tools.sh), installs the CRD, and fills one namespace as
a cluster with a workspace gateway would have it:

- the bench's ServingEndpoints (``--endpoints``, e.g. bench-chat and bench-stream) plus ``--extra`` more
  (``team-endpoint-NNN``, copies of bench-chat, each referencing its own Secret ``team-creds-NNN``), and every
  referenced Secret, in the API server and as files under ``--secrets-dir`` (the gateway pod's projected volume);
- the ServiceAccounts and RBAC the chart gives: ``modelgate-gateway`` (the chart's gateway ClusterRoles, bound in
  the namespace, and the reviews ClusterRole), ``modelgate-proxy`` (the reviews ClusterRole), and a caller
  ``bench-caller`` allowed to ``query`` the namespace's endpoints (``modelgate-query``);
- in ``--out``: ``server`` (the API server URL), ``ca.crt``, ``gateway.token`` and ``proxy.token`` (the accounts'
  API-server tokens), ``caller.token`` (a token for the proxies' audience ``modelgate.io/proxy``: the bearer
  the load sends), ``auth-gateway.yaml`` / ``auth-proxy.yaml`` (the ``AuthConfig`` the operator renders for the
  gateway and for a proxy with API keys off: Kubernetes tokens through TokenReview, ``authorize: rbac``),
  ``proxy-endpoints.yaml`` (the bench endpoints with their namespace, for ``serve -f``), and ``ready`` last.

Then it waits; SIGTERM (or Ctrl-C) stops the control plane and removes its state (a temp dir). It also stops when
its parent (the profile's shell) is gone. Dev tooling: never imported by the product.
"""

from __future__ import annotations

import argparse
import copy
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "hack"))

from modelgate_dev.devcluster import DevCluster, find_bin_dir  # noqa: E402

FILES = REPO / "charts" / "modelgate" / "files"
AUDIENCE = "modelgate.io/proxy"
TOKEN_DURATION = "4h"


def extra_endpoints(chat: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """``count`` copies of ``chat``, each named team-endpoint-NNN with its own Secret reference."""
    out = []
    for i in range(count):
        doc = copy.deepcopy(chat)
        doc["metadata"]["name"] = f"team-endpoint-{i:03d}"
        entity = doc["spec"]["servedEntities"][0]
        entity["name"] = f"team-endpoint-{i:03d}-upstream"
        entity["externalModel"]["openaiConfig"]["openaiApiKey"] = f"{{{{secrets/team-creds-{i:03d}/api-key}}}}"
        out.append(doc)
    return out


def secret_manifest(namespace: str, name: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
            "stringData": {"api-key": value}}


def _log(t0: float, what: str) -> None:
    print(f"kube_plane: {what} ({time.monotonic() - t0:.1f} s)", file=sys.stderr, flush=True)


def _await_rbac(cluster: DevCluster, namespace: str, verb: str, resource: str, user: str) -> None:
    deadline = time.monotonic() + 30
    while cluster.kubectl("auth", "can-i", verb, resource, "-n", namespace, f"--as={user}",
                          check=False).stdout.strip() != "yes":
        if time.monotonic() > deadline:
            raise SystemExit(f"kube_plane: RBAC never granted {verb} {resource} to {user}")
        time.sleep(0.1)


def populate(cluster: DevCluster, args: argparse.Namespace, out: Path, t0: float) -> None:
    ns = args.namespace
    cluster.install_crds(REPO / "crds")
    cluster.kubectl("create", "namespace", ns)
    for role in ("gateway", "gateway-permissions", "proxy-reviews", "query"):
        cluster.kubectl("apply", "-f", str(FILES / f"modelgate-{role}-clusterrole.yaml"))
    for sa in ("modelgate-gateway", "modelgate-proxy", "bench-caller"):
        cluster.kubectl("create", "serviceaccount", sa, "-n", ns)
    for role in ("gateway", "gateway-permissions"):
        cluster.kubectl("create", "rolebinding", f"modelgate-{role}", f"--clusterrole=modelgate-{role}",
                        f"--serviceaccount={ns}:modelgate-gateway", "-n", ns)
    cluster.kubectl("create", "clusterrolebinding", "modelgate-proxy-reviews", "--clusterrole=modelgate-proxy-reviews",
                    f"--serviceaccount={ns}:modelgate-gateway", f"--serviceaccount={ns}:modelgate-proxy")
    cluster.kubectl("create", "rolebinding", "bench-caller-query", "--clusterrole=modelgate-query",
                    f"--serviceaccount={ns}:bench-caller", "-n", ns)
    _log(t0, "namespace, accounts and RBAC")

    bench = [d for d in yaml.safe_load_all(Path(args.endpoints).read_text()) if d]
    for doc in bench:
        doc["metadata"]["namespace"] = ns
    chat = next(d for d in bench if d["metadata"]["name"] == "bench-chat")
    extra = extra_endpoints(chat, args.extra)
    secrets_dir = Path(args.secrets_dir)
    secrets = [secret_manifest(ns, "bench-upstream", (secrets_dir / "bench-upstream" / "api-key").read_text().strip())]
    for i in range(args.extra):
        value = f"sk-team-{i:03d}-not-a-real-key"
        secrets.append(secret_manifest(ns, f"team-creds-{i:03d}", value))
        (secrets_dir / f"team-creds-{i:03d}").mkdir(parents=True, exist_ok=True)
        (secrets_dir / f"team-creds-{i:03d}" / "api-key").write_text(value + "\n")
    cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all([*secrets, *bench, *extra]),
                    timeout=300)
    count = len(cluster.kubectl("get", "servingendpoints", "-n", ns, "-o", "name").stdout.split())
    if count != len(bench) + len(extra):
        raise SystemExit(f"kube_plane: {count} ServingEndpoints in {ns}, expected {len(bench) + len(extra)}")
    _log(t0, f"{count} ServingEndpoints and {len(secrets)} Secrets applied")

    gateway, proxy = f"system:serviceaccount:{ns}:modelgate-gateway", f"system:serviceaccount:{ns}:modelgate-proxy"
    _await_rbac(cluster, ns, "watch", "servingendpoints.serving.modelgate.io", gateway)
    _await_rbac(cluster, ns, "create", "tokenreviews.authentication.k8s.io", gateway)
    _await_rbac(cluster, ns, "create", "subjectaccessreviews.authorization.k8s.io", proxy)
    _await_rbac(cluster, ns, "query", "servingendpoints.serving.modelgate.io", f"system:serviceaccount:{ns}:bench-caller")

    (out / "ca.crt").write_bytes((cluster.dir / "pki" / "ca.crt").read_bytes())
    (out / "server").write_text(cluster.server + "\n")
    for sa, file, audiences in (("modelgate-gateway", "gateway.token", ()), ("modelgate-proxy", "proxy.token", ()),
                                ("bench-caller", "caller.token", (AUDIENCE,))):
        aud = [a for x in audiences for a in ("--audience", x)]
        token = cluster.kubectl("create", "token", sa, "-n", ns, f"--duration={TOKEN_DURATION}", *aud).stdout.strip()
        (out / file).write_text(token + "\n")
        (out / file).chmod(0o600)
    for who in ("gateway", "proxy"):
        config = {"mode": "bearer", "authorize": "rbac",
                  "kubernetes": {"audience": AUDIENCE, "server": cluster.server,
                                 "token_file": str(out / f"{who}.token"), "ca_file": str(out / "ca.crt")}}
        (out / f"auth-{who}.yaml").write_text(yaml.safe_dump(config))
    (out / "proxy-endpoints.yaml").write_text(yaml.safe_dump_all(bench))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--endpoints", required=True, help="the bench's ServingEndpoints (bench-chat, bench-stream)")
    parser.add_argument("--secrets-dir", required=True, help="holds bench-upstream/api-key; the extras' keys go here")
    parser.add_argument("--namespace", default="bench")
    parser.add_argument("--extra", type=int, default=200, help="more endpoints in the namespace (default 200)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ready").unlink(missing_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGHUP):  # Ctrl-C by hand: KeyboardInterrupt, the same finally
        signal.signal(sig, lambda *_: stop.set())
    parent = os.getppid()
    t0 = time.monotonic()
    cluster = DevCluster(bin_dir=find_bin_dir(), timeout=180)  # a temp dir; stop() removes it
    cluster.start()
    try:
        _log(t0, f"etcd + kube-apiserver up at {cluster.server}")
        populate(cluster, args, out, t0)
        (out / "ready").write_text(f"{os.getpid()}\n")
        _log(t0, "ready")
        while not stop.wait(1.0):
            if os.getppid() != parent:  # the profile's shell is gone: do not outlive it
                break
    finally:
        cluster.stop()
        (out / "ready").unlink(missing_ok=True)
        _log(t0, "control plane stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
