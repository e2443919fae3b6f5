"""A guardrail judge that is another ServingEndpoint, in a cluster (issue 18), against the real API server: the
operator renders the judge endpoint into the naming endpoint's proxy config (its credentials behind Secret
references, mounted), says in the condition when the judge is missing, re-renders when the judge changes; and the
proxy the rendered objects describe (read back from the API server and run here with ``modelgate serve``) judges
through a Llama Guard stand-in. The operator's global judge (``--guardrail-judge``) likewise."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml
from lightkube import Client
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Secret

from modelgate_dev.devcluster import DevCluster
from modelgate_operator import render
from modelgate_operator.kube import ServingEndpoint
from modelgate_operator.render_judge import JUDGES_KEY
from tests.standins.guard_judge import GuardJudgeStandIn
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.server import free_port, serve_app

from .harness import (
    REPO,
    OperatorProcess,
    assert_no_leak,
    cluster_texts,
    condition,
    endpoint,
    install_rbac,
    put_secret,
    wait_for,
)
from .samples import endpoint as manifest

JUDGE_KEY = "sk-judge-k8s-51cf0e7a"
MODEL_KEY = "sk-model-k8s-9b2d11c4"


def _apply(k8s: DevCluster, namespace: str, name: str, spec: dict[str, Any]) -> None:
    k8s.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump(manifest(name, namespace, spec)))


def _entity(base: str, model: str, key: str) -> dict[str, Any]:
    return {"externalModel": {"name": model, "provider": "openai", "task": "llm/v1/chat",
                              "openaiConfig": {"openaiApiKeyPlaintext": key, "openaiApiBase": base + "/v1"}}}


def _chat_spec(base: str, judge: dict[str, Any] | None) -> dict[str, Any]:
    guardrails: dict[str, Any] = {"input": {"safety": True}}
    if judge is not None:
        guardrails["judge"] = judge
    return {"servedEntities": [_entity(base, "gpt-4o", MODEL_KEY)], "aiGateway": {"guardrails": guardrails}}


def _config(obj: dict[str, Any], reason: str, text: str = "") -> dict[str, Any] | None:
    cond = condition(obj, "ConfigValid") or {}
    fresh = cond.get("observedGeneration") == obj["metadata"]["generation"]
    return obj if fresh and cond.get("reason") == reason and text in (cond.get("message") or "") else None


def _data(client: Client, namespace: str, name: str) -> dict[str, str]:
    cm = client.get(ConfigMap, render.child_name(name), namespace=namespace)
    return dict(cm.data or {})


@contextmanager
def _rendered_proxy(client: Client, namespace: str, name: str, root: Path) -> Iterator[str]:
    """Play the kubelet: the Deployment's ConfigMap items and Secret keys (read from the API server) written under
    ``root``, its container command run here with ``modelgate serve``."""
    dep = client.get(Deployment, render.child_name(name), namespace=namespace)
    pod = dep.spec.template.spec  # type: ignore[union-attr]
    (container,) = pod.containers  # type: ignore[union-attr]
    volumes = {v.name: v for v in pod.volumes or []}  # type: ignore[union-attr]
    for mount in container.volumeMounts or []:
        volume = volumes[mount.name]
        target = root / mount.mountPath.lstrip("/")
        if volume.configMap is not None:
            data = client.get(ConfigMap, volume.configMap.name, namespace=namespace).data or {}
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data[mount.subPath or ""])
        elif volume.secret is not None:
            secret = client.get(Secret, volume.secret.secretName or "", namespace=namespace).data or {}
            target.mkdir(parents=True, exist_ok=True)
            for item in volume.secret.items or []:
                (target / item.path).write_text(base64.b64decode(secret[item.key]).decode())
        else:
            target.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [sys.executable, "-m", "modelgate_proxy"]
    args = iter((container.command or [])[1:])
    for arg in args:
        if arg in ("--host", "--port"):
            next(args)
            command += [arg, "127.0.0.1" if arg == "--host" else str(port)]
        else:
            command.append(str(root) + arg if arg.startswith(render.CONFIG_DIR) else arg)
    log = (root / "proxy.log").open("wb")
    proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("the proxy ready", lambda: _ready(url, proc), timeout=30)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def _ready(url: str, proc: subprocess.Popen[bytes]) -> bool:
    assert proc.poll() is None, "the proxy exited"
    try:
        return httpx.get(url + "/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _chat(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def test_a_judge_endpoint_is_rendered_into_the_proxy_that_uses_it(
    k8s: DevCluster, namespace: str, client: Client, tmp_path: Path
) -> None:
    judge = GuardJudgeStandIn(api_key=JUDGE_KEY)
    model = OpenAIStandIn(api_key=MODEL_KEY)
    kubeconfig = install_rbac(k8s, namespace)
    with serve_app(judge.app) as judge_url, serve_app(model.app) as model_url, OperatorProcess(
        kubeconfig, namespace, tmp_path / "operator.log", "--log-format", "json", "--auth-mode", "none"
    ) as op:
        # The judge endpoint does not exist yet: the condition says so, and the proxy carries no judge.
        _apply(k8s, namespace, "chat", _chat_spec(model_url, {"endpoint": "guard", "timeoutSeconds": 3}))
        obj = wait_for("GuardrailsNotEnforced", lambda: _config(endpoint(client, namespace, "chat"),
                                                                 "GuardrailsNotEnforced", "does not exist"), timeout=20)
        message = condition(obj, "ConfigValid")["message"]  # type: ignore[index]
        assert "the judge endpoint 'guard' does not exist" in message
        assert message.endswith(": aiGateway.guardrails.input.safety")
        assert condition(obj, "Ready")["reason"] in ("GuardrailsNotEnforced", "Progressing")  # type: ignore[index]
        assert JUDGES_KEY not in wait_for("the ConfigMap", lambda: _data(client, namespace, "chat"))

        # The judge appears: the naming endpoint is re-rendered with it, without being touched itself.
        _apply(k8s, namespace, "guard", {"servedEntities": [_entity(judge_url, "llama-guard-3-8b", JUDGE_KEY)]})
        wait_for("the judge enforced", lambda: _config(endpoint(client, namespace, "chat"), "ConfigValid"), timeout=20)
        data = wait_for("judges.yaml", lambda: (d := _data(client, namespace, "chat")).get(JUDGES_KEY) and d)
        doc = yaml.safe_load(data[JUDGES_KEY])
        owned = render.owned_secret_name("guard")
        assert doc["metadata"]["name"] == "guard"
        assert doc["spec"]["servedEntities"][0]["externalModel"]["openaiConfig"]["openaiApiKey"] == (
            f"{{{{secrets/{owned}/llama-guard-3-8b.openaiApiKey}}}}")
        dep = client.get(Deployment, render.child_name("chat"), namespace=namespace)
        command = dep.spec.template.spec.containers[0].command  # type: ignore[union-attr]
        assert command[command.index("--judge-file") + 1] == "/etc/modelgate/judges.yaml"
        mounted = {v.secret.secretName: [i.key for i in v.secret.items or []]
                   for v in dep.spec.template.spec.volumes or [] if v.secret is not None}  # type: ignore[union-attr]
        assert mounted[owned] == ["llama-guard-3-8b.openaiApiKey"]
        assert_no_leak("rendering the judge", [JUDGE_KEY, MODEL_KEY], cluster_texts(k8s, namespace, "chat"))

        # The proxy these objects describe judges through the judge endpoint, with its credential from the mount.
        with _rendered_proxy(client, namespace, "chat", tmp_path / "pod") as url:
            invocations = f"{url}/serving-endpoints/chat/invocations"
            assert httpx.post(invocations, json=_chat("hello there"), timeout=10).status_code == 200
            blocked = httpx.post(invocations, json=_chat("UNSAFE-WEAPONS plans"), timeout=10)
            assert blocked.status_code == 400
            assert "input guardrail 'safety'" in blocked.json()["message"]
            assert judge.stats.requests[-1]["headers"]["authorization"] == f"Bearer {JUDGE_KEY}"
            # the judge endpoint is not served by this proxy: only its judges call it
            assert httpx.post(f"{url}/serving-endpoints/guard/invocations", json=_chat("hi"), timeout=10).status_code == 404

        # The judge changes: the naming endpoint's proxy config follows (and its pods roll).
        before = dep.spec.template.metadata.annotations[render.CHECKSUM_ANNOTATION]  # type: ignore[union-attr]
        _apply(k8s, namespace, "guard", {"servedEntities": [_entity(judge_url, "llama-guard-4", JUDGE_KEY)]})
        data = wait_for("the new judge", lambda: "llama-guard-4" in _data(client, namespace, "chat").get(JUDGES_KEY, "")
                        and _data(client, namespace, "chat"), timeout=20)
        after = client.get(Deployment, render.child_name("chat"), namespace=namespace)
        assert after.spec.template.metadata.annotations[render.CHECKSUM_ANNOTATION] != before  # type: ignore[union-attr]

        # An invalid judge (not a chat endpoint) and a deleted one are said, and the judge leaves the config.
        embed = {"servedEntities": [{**_entity(judge_url, "emb", JUDGE_KEY)}]}
        embed["servedEntities"][0]["externalModel"]["task"] = "llm/v1/embeddings"
        _apply(k8s, namespace, "guard", embed)
        wait_for("not a chat endpoint", lambda: _config(endpoint(client, namespace, "chat"), "GuardrailsNotEnforced",
                                                         "is not a chat endpoint"), timeout=20)
        assert JUDGES_KEY not in _data(client, namespace, "chat")
        client.delete(ServingEndpoint, "guard", namespace=namespace)
        wait_for("judge gone", lambda: _config(endpoint(client, namespace, "chat"), "GuardrailsNotEnforced",
                                                "does not exist"), timeout=20)
        assert "Traceback" not in op.logs()


def test_the_operators_global_judge(k8s: DevCluster, namespace: str, client: Client, tmp_path: Path) -> None:
    judge = GuardJudgeStandIn(api_key=JUDGE_KEY)
    model = OpenAIStandIn(api_key=MODEL_KEY)
    kubeconfig = install_rbac(k8s, namespace)
    with serve_app(judge.app) as judge_url, serve_app(model.app) as model_url:
        flag = json.dumps({"url": judge_url + "/v1", "model": "llama-guard-3-8b", "apiKey": "{{secrets/guard/token}}",
                           "failurePolicy": "FAIL_CLOSED"})
        with OperatorProcess(kubeconfig, namespace, tmp_path / "operator.log", "--log-format", "json",
                             "--auth-mode", "none", "--guardrail-judge", flag) as op:
            _apply(k8s, namespace, "chat", _chat_spec(model_url, None))
            obj = wait_for("the key missing", lambda: _config(endpoint(client, namespace, "chat"),
                                                                "GuardrailsNotEnforced", "cannot be read"), timeout=20)
            assert "guard/token" in condition(obj, "ConfigValid")["message"]  # type: ignore[index]
            put_secret(client, namespace, "guard", {"token": JUDGE_KEY})  # the Secret event re-reconciles
            wait_for("enforced", lambda: _config(endpoint(client, namespace, "chat"), "ConfigValid"), timeout=20)
            dep = wait_for("the key mounted", lambda: (d := client.get(Deployment, render.child_name("chat"),
                                                                       namespace=namespace))
                           and any(v.secret is not None and v.secret.secretName == "guard"
                                   for v in d.spec.template.spec.volumes or []) and d)  # type: ignore[union-attr]
            command = dep.spec.template.spec.containers[0].command  # type: ignore[union-attr]
            assert command[command.index("--guardrail-judge-url") + 1] == judge_url + "/v1"
            assert command[command.index("--guardrail-judge-api-key") + 1] == "{{secrets/guard/token}}"
            with _rendered_proxy(client, namespace, "chat", tmp_path / "pod") as url:
                invocations = f"{url}/serving-endpoints/chat/invocations"
                assert httpx.post(invocations, json=_chat("hello"), timeout=10).status_code == 200
                assert httpx.post(invocations, json=_chat("UNSAFE-WEAPONS"), timeout=10).status_code == 400
                assert judge.stats.requests[-1]["headers"]["authorization"] == f"Bearer {JUDGE_KEY}"
            assert "Traceback" not in op.logs()
