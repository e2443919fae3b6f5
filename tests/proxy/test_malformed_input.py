"""Every malformed request gets a 4xx in the error shape of the route it was sent to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.standins.openai_api import OpenAIStandIn

from .conftest import FAKE_KEY
from .harness import Proxy, endpoint, openai_entity, run_proxy

JSON = {"content-type": "application/json"}


@pytest.fixture
def proxy(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> Any:
    _, url = openai_standin
    manifests = [endpoint("chat", [openai_entity(url)]),
                 endpoint("embed", [openai_entity(url, model="text-embedding-3-small", task="llm/v1/embeddings")])]
    with run_proxy(tmp_path, manifests, secrets={"openai": {"api-key": FAKE_KEY}},
                   extra=["--max-body-bytes", "100000"]) as p:
        yield p


def databricks_shape(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert set(body) == {"error_code", "message"}, body
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


def openai_shape(resp: httpx.Response) -> dict[str, Any]:
    body = resp.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return body["error"]


MSG = [{"role": "user", "content": "hi"}]

CASES: list[tuple[str, bytes | None, dict[str, str], int, str | None]] = [
    # (description, raw body or None for json=..., headers, status, error_code)
    ("malformed json", b'{"messages": [', JSON, 400, "MALFORMED_REQUEST"),
    ("empty body", b"", JSON, 400, "MALFORMED_REQUEST"),
    ("not an object", b"[1, 2]", JSON, 400, "MALFORMED_REQUEST"),
    ("wrong content type", b'{"messages": []}', {"content-type": "text/plain"}, 415, "INVALID_PARAMETER_VALUE"),
    ("form content type", b"messages=x", {"content-type": "application/x-www-form-urlencoded"}, 415, None),
    ("oversized", b'{"messages": "' + b"x" * 200_000 + b'"}', JSON, 413, "REQUEST_TOO_LARGE"),
    ("missing field", b'{"temperature": 0.5}', JSON, 400, "INVALID_PARAMETER_VALUE"),
    ("messages not a list", b'{"messages": "hi"}', JSON, 400, "INVALID_PARAMETER_VALUE"),
    ("empty messages", b'{"messages": []}', JSON, 400, None),
    ("message not an object", b'{"messages": ["hi"]}', JSON, 400, None),
    ("role missing", b'{"messages": [{"content": "hi"}]}', JSON, 400, None),
    ("content wrong type", b'{"messages": [{"role": "user", "content": 5}]}', JSON, 400, None),
    ("temperature wrong type", b'{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}', JSON, 400, None),
    ("max_tokens wrong type", b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1.5}', JSON, 400, None),
    ("stream wrong type", b'{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}', JSON, 400, None),
    ("stop wrong type", b'{"messages": [{"role": "user", "content": "hi"}], "stop": [1]}', JSON, 400, None),
    ("extra_params wrong type", b'{"messages": [{"role": "user", "content": "hi"}], "extra_params": 3}', JSON, 400, None),
    ("wrong task", b'{"input": "embed me"}', JSON, 400, "INVALID_PARAMETER_VALUE"),
]


@pytest.mark.parametrize(("what", "raw", "headers", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_invocations_rejects(proxy: Proxy, what: str, raw: bytes, headers: dict[str, str], status: int,
                             code: str | None) -> None:
    resp = httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations", content=raw, headers=headers)
    assert resp.status_code == status, resp.text
    body = databricks_shape(resp)
    if code:
        assert body["error_code"] == code
    if what == "wrong task":
        assert "llm/v1/chat" in body["message"]
        assert "llm/v1/embeddings" in body["message"]


@pytest.mark.parametrize(("what", "raw", "headers", "status", "code"), CASES, ids=[c[0] for c in CASES])
def test_openai_route_rejects(proxy: Proxy, what: str, raw: bytes, headers: dict[str, str], status: int,
                              code: str | None) -> None:
    # The same bodies with model = endpoint name where they are objects.
    if raw.startswith(b"{") and raw.endswith(b"}") and len(raw) < 1000:
        raw = b'{"model": "chat", ' + raw[1:] if raw != b"{}" else raw
    resp = httpx.post(f"{proxy.url}/serving-endpoints/chat/completions", content=raw, headers=headers)
    assert resp.status_code == status, resp.text
    error = openai_shape(resp)
    assert error["message"]


def test_unknown_endpoint_is_404_in_both_shapes(proxy: Proxy) -> None:
    resp = httpx.post(f"{proxy.url}/serving-endpoints/nope/invocations", json={"messages": MSG})
    assert resp.status_code == 404
    assert databricks_shape(resp)["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    resp = httpx.post(f"{proxy.url}/serving-endpoints/chat/completions", json={"model": "nope", "messages": MSG})
    assert resp.status_code == 404
    assert openai_shape(resp)["code"] == "model_not_found"


def test_openai_route_model_checks(proxy: Proxy) -> None:
    resp = httpx.post(f"{proxy.url}/serving-endpoints/chat/completions", json={"messages": MSG})
    assert resp.status_code == 400
    assert openai_shape(resp)["param"] == "model"
    resp = httpx.post(f"{proxy.url}/serving-endpoints/chat/completions", json={"model": 7, "messages": MSG})
    assert resp.status_code == 400
    assert openai_shape(resp)["param"] == "model"
    # wrong task: a chat request to an embeddings endpoint
    resp = httpx.post(f"{proxy.url}/serving-endpoints/chat/completions", json={"model": "embed", "messages": MSG})
    assert resp.status_code == 400
    assert "llm/v1/embeddings" in openai_shape(resp)["message"]
    resp = httpx.post(f"{proxy.url}/serving-endpoints/embeddings", json={"model": "embed", "input": "x", "stream": True})
    assert resp.status_code == 400
    assert openai_shape(resp)["param"] == "stream"


def test_unknown_paths_and_methods(proxy: Proxy) -> None:
    resp = httpx.get(f"{proxy.url}/serving-endpoints/chat/invocations")
    assert resp.status_code == 405
    assert databricks_shape(resp)
    resp = httpx.get(f"{proxy.url}/serving-endpoints/chat/completions")
    assert resp.status_code == 405
    assert openai_shape(resp)
    resp = httpx.post(f"{proxy.url}/somewhere/else", json={})
    assert resp.status_code == 404
    assert databricks_shape(resp)
    # An OpenAI client operation the gateway does not serve (base_url=<proxy>/serving-endpoints): OpenAI's shape.
    resp = httpx.post(f"{proxy.url}/serving-endpoints/responses", json={"model": "chat", "input": "hi"})
    assert resp.status_code == 404
    assert "/serving-endpoints/chat/completions" in openai_shape(resp)["message"]
    resp = httpx.post(f"{proxy.url}/serving-endpoints/chat/predict", json={})
    assert resp.status_code == 404
    assert openai_shape(resp)
    resp = httpx.post(f"{proxy.url}/serving-endpoints/nope/invocations", json={"messages": MSG})
    assert resp.status_code == 404
    assert databricks_shape(resp)["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_chunked_oversized_body_is_413(proxy: Proxy) -> None:
    def gen():  # no content-length: the limit is enforced while reading
        yield b'{"messages": "'
        for _ in range(30):
            yield b"x" * 10_000
        yield b'"}'

    resp = httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations", content=gen(), headers=JSON)
    assert resp.status_code == 413
    assert databricks_shape(resp)["error_code"] == "REQUEST_TOO_LARGE"


def _raw_exchange(base: str, request: bytes, chunk: int = 64 * 1024) -> bytes:
    """Send ``request`` in ``chunk``-sized writes over one connection; return all the proxy answered."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        try:
            for start in range(0, len(request), chunk):
                sock.sendall(request[start:start + chunk])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the proxy answered and closed before the head was complete
        answer = b""
        while data := sock.recv(65536):
            answer += data
    return answer


def test_oversized_request_head_is_a_431_and_bounded(proxy: Proxy) -> None:
    from modelgate_proxy.server.http_protocol import MAX_HEAD_BYTES

    # A head just under the bound, with a body behind it in the same writes, is served.
    body = b'{"messages": [{"role": "user", "content": "hi"}]}'
    big = b"x" * (MAX_HEAD_BYTES - 1024)
    ok = (b"POST /serving-endpoints/chat/invocations HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
          b"x-big: " + big + b"\r\ncontent-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
    assert _raw_exchange(proxy.base, ok).startswith(b"HTTP/1.1 200 ")
    # One header of 8 MiB: refused once the head passes the bound, long before all of it is sent.
    huge = b"GET /healthz HTTP/1.1\r\nhost: t\r\nx-huge: " + b"y" * (8 * 1024 * 1024) + b"\r\n\r\n"
    answer = _raw_exchange(proxy.base, huge)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    # The proxy still serves.
    assert httpx.get(f"{proxy.url}/healthz").status_code == 200


@pytest.mark.parametrize(("field", "value"), [
    ("messages", [{"role": "wizard", "content": "hi"}]),
    ("messages", [{"role": "user", "content": [5]}]),
    ("tools", [5]),
    ("tools", [{"type": "function", "function": {}}]),
    ("n", -1),
])  # fmt: skip
def test_bodies_the_provider_refuses_are_its_400_never_a_500(proxy: Proxy, field: str, value: Any) -> None:
    """What the proxy does not judge itself reaches the provider, whose 400 the caller gets in the route's shape."""
    body = {"model": "chat", "messages": MSG, field: value}
    r = httpx.post(f"{proxy.base}/chat/completions", json=body)
    assert r.status_code == 400, r.text
    error = openai_shape(r)
    assert error["type"] == "invalid_request_error"
    r = httpx.post(f"{proxy.base}/chat/invocations", json={k: v for k, v in body.items() if k != "model"})
    assert r.status_code == 400, r.text
    databricks_shape(r)
