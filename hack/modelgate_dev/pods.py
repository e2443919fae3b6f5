"""Reaching pods of the dev cluster: it has no kube-proxy, so a pod is reached by its IP on the node's bridge."""

from __future__ import annotations

import json

from .devcluster import DevCluster


def ready_pod_url(cluster: DevCluster, namespace: str, selector: str, port: int) -> str:
    """``http://<ip>:<port>`` of a Ready, not terminating pod matching the label ``selector``; "" if none."""
    got = cluster.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "json", check=False)
    if got.returncode != 0:
        return ""
    for pod in json.loads(got.stdout).get("items", []):
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in pod.get("status", {}).get("conditions", []))  # fmt: skip
        if ready and not pod["metadata"].get("deletionTimestamp") and pod["status"].get("podIP"):
            return f"http://{pod['status']['podIP']}:{port}"
    return ""
