"""The aiohttp fast path of the operator's hot API calls (:mod:`modelgate_operator.kubehttp`), against a stand-in
API server that answers like kube-apiserver: server-side apply is ``PATCH`` with ``Content-Type:
application/apply-patch+yaml`` and ``?fieldManager=...&force=true``, errors are a ``Status`` object
(https://kubernetes.io/docs/reference/using-api/api-concepts/#server-side-apply,
https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from lightkube.config.kubeconfig import KubeConfig
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from modelgate_operator import kubehttp
from modelgate_operator.kube import Kube, KubeError
from tests.standins.server import serve_app

TOKEN = "stand-in-token"
LEAK = "sk-should-never-appear"


def _status(code: int, reason: str, message: str) -> JSONResponse:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason, "message": message}
    return JSONResponse(body, status_code=code)


def _app(seen: list[dict[str, Any]]) -> Starlette:
    async def patch(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return _status(401, "Unauthorized", "Unauthorized")
        body = json.loads(await request.body())
        seen.append({"path": request.url.path, "query": dict(request.query_params),
                     "type": request.headers.get("content-type"), "body": body})  # fmt: skip
        name = request.path_params["name"]
        if name == "gone":
            return _status(404, "NotFound", f'"{name}" not found')
        if name == "bad":
            return _status(422, "Invalid", f"data: Invalid value: {LEAK}")
        return JSONResponse({**body, "metadata": {**body.get("metadata", {}), "resourceVersion": "7"}})

    routes = [
        Route("/api/v1/namespaces/{ns}/{plural}/{name}", patch, methods=["PATCH"]),
        Route("/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}", patch, methods=["PATCH"]),
        Route("/apis/{group}/{version}/namespaces/{ns}/{plural}/{name}/status", patch, methods=["PATCH"]),
    ]
    return Starlette(routes=routes)


def _secret(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": "ns"},
            "data": {"key": "c2stc2hvdWxkLW5ldmVyLWFwcGVhcg=="}}  # fmt: skip


def test_apply_and_status_patch_speak_the_api_servers_protocol(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    seen: list[dict[str, Any]] = []

    async def scenario(base: str) -> None:
        kube = Kube(client=None, fast=kubehttp.FastPath(base, None, token_file=str(token_file)))  # type: ignore[arg-type]
        try:
            deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "ns"}}
            answer = await kube.apply(deployment)
            assert answer["metadata"]["resourceVersion"] == "7"
            await kube.patch_status("ns", "ep", {"observedGeneration": 3})
            await kube.patch_status("ns", "gone", {"observedGeneration": 3})  # deleted meanwhile: no error
            with pytest.raises(KubeError) as err:
                await kube.apply(_secret("bad"))
            assert err.value.code == 422
            assert LEAK not in str(err.value)  # a Secret's server message may echo its content
            with pytest.raises(KubeError) as err:
                await kube.apply({**deployment, "metadata": {"name": "bad", "namespace": "ns"}})
            assert LEAK in str(err.value)  # other kinds keep the server's message
        finally:
            await kube.fast.close()  # type: ignore[union-attr]

    with serve_app(_app(seen)) as base:
        asyncio.run(scenario(base))
    assert seen[0]["path"] == "/apis/apps/v1/namespaces/ns/deployments/d"
    assert seen[0]["query"] == {"fieldManager": "modelgate-operator", "force": "true"}
    assert seen[0]["type"] == "application/apply-patch+yaml"
    assert seen[1]["path"] == "/apis/serving.modelgate.io/v1alpha1/namespaces/ns/servingendpoints/ep/status"
    assert seen[1]["type"] == "application/merge-patch+json"
    assert seen[1]["query"] == {"fieldManager": "modelgate-operator"}  # not the User-Agent ("Python")
    assert seen[1]["body"] == {"status": {"observedGeneration": 3}}
    assert seen[3]["path"] == "/api/v1/namespaces/ns/secrets/bad"


def test_unreachable_server_is_a_kube_error_with_code_0() -> None:
    async def scenario() -> None:
        kube = Kube(client=None, fast=kubehttp.FastPath("http://127.0.0.1:9", None, timeout=5))  # type: ignore[arg-type]
        try:
            with pytest.raises(KubeError) as err:
                await kube.patch_status("ns", "ep", {})
            assert err.value.code == 0
        finally:
            await kube.fast.close()  # type: ignore[union-attr]

    asyncio.run(scenario())


def _config(user: dict[str, Any], tmp_path: Path) -> Any:
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
           "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
           "users": [{"name": "u", "user": user}],
           "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}  # fmt: skip
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(doc))
    return KubeConfig.from_file(path).get()


def test_only_static_credentials_take_the_fast_path(tmp_path: Path) -> None:
    import ssl

    tls = ssl.create_default_context()
    assert kubehttp.from_config(_config({"token": "t"}, tmp_path), tls, connections=4, timeout=1) is not None
    assert kubehttp.from_config(_config({"tokenFile": "/x"}, tmp_path), tls, connections=4, timeout=1) is not None
    exec_user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "get-token"}}
    assert kubehttp.from_config(_config(exec_user, tmp_path), tls, connections=4, timeout=1) is None
    basic = {"username": "a", "password": "b"}
    assert kubehttp.from_config(_config(basic, tmp_path), tls, connections=4, timeout=1) is None
