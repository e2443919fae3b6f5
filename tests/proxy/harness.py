"""Start the proxy exactly as ``modelgate serve`` does (argument parsing, manifest loading, uvicorn config),
in a background thread, and helpers to write manifests and Secret-volume files."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from modelgate_proxy.cli import build_parser
from modelgate_proxy.cli.serve import uvicorn_config
from modelgate_proxy.server.state import GatewayState
from tests.standins.server import free_port

NO_AUTH = ("--no-auth",)
"""The authentication choice of the tests about something else: ``serve`` refuses to start without one, so every
harness call makes it; tests of authentication pass their own (``auth=["--api-keys", DIR]`` etc.)."""


@dataclass
class Proxy:
    url: str
    state: GatewayState
    log_path: Path | None = None

    @property
    def base(self) -> str:
        """The OpenAI client's ``base_url``."""
        return self.url + "/serving-endpoints"


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        pass


def endpoint(name: str, entities: list[dict[str, Any]], *, routes: list[tuple[str, int]] | None = None,
             ai_gateway: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"servedEntities": entities}
    if routes is not None:
        spec["trafficConfig"] = {"routes": [{"servedEntityName": n, "trafficPercentage": p} for n, p in routes]}
    if ai_gateway is not None:
        spec["aiGateway"] = ai_gateway
    return {"apiVersion": "serving.modelgate.io/v1alpha1", "kind": "ServingEndpoint", "metadata": {"name": name},
            "spec": spec}


def openai_entity(base: str, *, name: str | None = None, model: str = "gpt-4o-mini", task: str = "llm/v1/chat",
                  key_ref: str | None = "{{secrets/openai/api-key}}", key: str | None = None,
                  organization: str | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {"openaiApiBase": base + "/v1"}
    if key is not None:
        config["openaiApiKeyPlaintext"] = key
    else:
        config["openaiApiKey"] = key_ref
    if organization:
        config["openaiOrganization"] = organization
    entity: dict[str, Any] = {"externalModel": {"name": model, "provider": "openai", "task": task,
                                                "openaiConfig": config}}
    if name:
        entity["name"] = name
    return entity


def write_secret(secrets_dir: Path, name: str, key: str, value: str) -> None:
    """Write like the kubelet: the file lives in a timestamped dir reached through the ``..data`` symlink,
    and a rotation swaps the symlink atomically."""
    secret = secrets_dir / name
    secret.mkdir(parents=True, exist_ok=True)
    stamp = secret / f"..{time.time_ns()}"
    stamp.mkdir()
    old = {p.name: p.read_text() for p in (secret / "..data").iterdir()} if (secret / "..data").exists() else {}
    old[key] = value
    for k, v in old.items():
        (stamp / k).write_text(v)
    tmp = secret / "..data_tmp"
    tmp.symlink_to(stamp.name)
    os.replace(tmp, secret / "..data")
    link = secret / key
    if not link.is_symlink():
        link.symlink_to(Path("..data") / key)


@contextmanager
def run_proxy(tmp_path: Path, manifests: list[dict[str, Any]], *, secrets: dict[str, dict[str, str]] | None = None,
              extra: list[str] | None = None, auth: Sequence[str] = NO_AUTH) -> Iterator[Proxy]:
    config_file = tmp_path / f"endpoints-{time.time_ns()}.yaml"
    config_file.write_text(yaml.safe_dump_all(manifests))
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    for name, keys in (secrets or {}).items():
        for key, value in keys.items():
            write_secret(secrets_dir, name, key, value)
    port = free_port()
    argv = ["serve", "-f", str(config_file), "--secrets-dir", str(secrets_dir), "--host", "127.0.0.1",
            "--port", str(port), "--log-level", "warning", *auth, *(extra or [])]
    args = build_parser().parse_args(argv)
    config = uvicorn_config(args)
    server = _Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the proxy did not start")
        time.sleep(0.01)
    try:
        yield Proxy(f"http://127.0.0.1:{port}", config.app.state.gateway)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def established_connections(port: int) -> int:
    """ESTABLISHED TCP connections whose local port is ``port`` (the stand-in's side), from /proc/net/tcp."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            if int(local.rsplit(":", 1)[1], 16) == port and state == "01":
                count += 1
    return count


def run(coro: Any) -> Any:
    return asyncio.run(coro)
