"""Helpers of the real-node tests: the operator on the node cluster, a provider stand-in on the node's bridge
address (reachable from pods, inside the machine), and a client that sends requests to the ready proxy pods
(there is no kube-proxy: it balances over the EndpointSlice's ready addresses, as kube-proxy would)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from lightkube import Client
from lightkube.config.kubeconfig import KubeConfig
from lightkube.resources.core_v1 import Pod
from lightkube.resources.discovery_v1 import EndpointSlice

from modelgate_dev.node.cluster import NodeCluster
from modelgate_dev.node.layout import GATEWAY
from modelgate_dev.node.node import RELAY_PORT
from modelgate_operator import render
from tests.operator.harness import OperatorProcess, install_rbac
from tests.operator.samples import endpoint as manifest
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.server import free_port, serve_app

Scope = dict[str, Any]


class RotatingKeys:
    """An OpenAI stand-in that accepts every key in ``keys`` (a provider during a key rotation)."""

    def __init__(self, *keys: str) -> None:
        self.keys = set(keys)
        self.inner = OpenAIStandIn(api_key="sk-canonical")

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = []
            for k, v in scope["headers"]:
                if k == b"authorization" and v.decode().removeprefix("Bearer ") in self.keys:
                    v = b"Bearer sk-canonical"
                headers.append((k, v))
            scope = {**scope, "headers": headers}
        await self.inner(scope, receive, send)


@contextmanager
def provider_on_bridge(*keys: str) -> Iterator[str]:
    """The stand-in on the node's bridge address; yields its OpenAI base URL (``http://10.244.77.1:<p>/v1``)."""
    with serve_app(RotatingKeys(*keys), host=str(GATEWAY), port=free_port()) as url:
        yield f"{url}/v1"


def proxy_image(nc: NodeCluster) -> str:
    return nc.node.images["proxy"].ref


PODS_API_SERVER = f"https://{GATEWAY}:{RELAY_PORT}"
"""Where proxy pods reach the API server here (the relay: no kube-proxy routes the ``kubernetes`` Service)."""


@contextmanager
def operator_on(nc: NodeCluster, namespace: str, log: Path) -> Iterator[OperatorProcess]:
    kubeconfig = install_rbac(nc.cluster, namespace)  # type: ignore[arg-type]
    args = ("--log-format", "json", "--proxy-image", proxy_image(nc), "--proxy-image-pull-policy", "Never",
            "--proxy-api-server", PODS_API_SERVER)  # fmt: skip
    with OperatorProcess(kubeconfig, namespace, log, *args) as op:
        yield op


def apply_endpoint(nc: NodeCluster, namespace: str, name: str, spec: dict[str, Any]) -> None:
    nc.cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(manifest(name, namespace, spec)))


def chat_spec(api_base: str, replicas: int = 1, **proxy: Any) -> dict[str, Any]:
    return {
        "servedEntities": [{
            "name": "gpt", "externalModel": {
                "name": "gpt-4o-mini", "provider": "openai", "task": "llm/v1/chat",
                "openaiConfig": {"openaiApiKey": "{{secrets/openai/key}}", "openaiApiBase": api_base},
            },
        }],
        # open unless a test is about authentication (tests/node/test_auth_node.py): these send no credential
        "proxy": {"replicas": replicas, "authentication": {"mode": "none"}, **proxy},
    }  # fmt: skip


def admin(nc: NodeCluster) -> Client:
    return Client(KubeConfig.from_file(nc.cluster.kubeconfig), field_manager="test-admin")


def proxy_pods(client: Client, namespace: str, name: str) -> list[Pod]:
    return list(client.list(Pod, namespace=namespace, labels={render.ENDPOINT_LABEL: name}))


def ready_addresses(client: Client, namespace: str, name: str) -> list[str]:
    """Ready pod IPs behind the endpoint's Service (what kube-proxy would route to)."""
    svc = render.child_name(name)
    out = []
    for es in client.list(EndpointSlice, namespace=namespace, labels={"kubernetes.io/service-name": svc}):
        for ep in es.endpoints or []:
            if ep.conditions is not None and ep.conditions.ready:
                out.extend(ep.addresses)
    return sorted(out)


def chat(base: str, text: str, name: str, client: httpx.Client | None = None) -> httpx.Response:
    body = {"messages": [{"role": "user", "content": text}], "max_tokens": 16}
    url = f"{base}/serving-endpoints/{name}/invocations"
    if client is not None:
        return client.post(url, json=body)
    return httpx.post(url, json=body, timeout=20, trust_env=False)


@dataclass
class Load:
    """Constant traffic to the ready pods: ``workers`` threads, each sending one request after another to a
    random ready address (the list refreshed every 100 ms from the EndpointSlices). No retries: every error
    or non-200 answer counts as failed."""

    client: Client
    namespace: str
    name: str
    workers: int = 4
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        self.addresses = ready_addresses(self.client, self.namespace, self.name)
        self._threads = [threading.Thread(target=self._refresh, daemon=True)]
        self._threads += [threading.Thread(target=self._work, daemon=True) for _ in range(self.workers)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def _refresh(self) -> None:
        while not self._stop.wait(0.1):
            try:
                self.addresses = ready_addresses(self.client, self.namespace, self.name)
            except Exception as e:
                self.errors.append(f"refresh: {e}")

    def _work(self) -> None:
        with httpx.Client(timeout=20, trust_env=False) as http:
            while not self._stop.is_set():
                addresses = self.addresses
                if not addresses:
                    time.sleep(0.05)
                    continue
                ip = random.choice(addresses)
                try:
                    resp = chat(f"http://{ip}:{render.PROXY_PORT}", "ping", self.name, http)
                    ok = resp.status_code == 200
                    detail = f"{ip}: HTTP {resp.status_code} {resp.text[:200]}"
                except httpx.HTTPError as e:
                    ok, detail = False, f"{ip}: {type(e).__name__}: {e}"
                with self._lock:
                    self.sent += 1
                    if not ok:
                        self.failed += 1
                        if len(self.errors) < 20:
                            self.errors.append(detail)


def wait(what: str, fn: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
        except Exception as e:
            last = e
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
