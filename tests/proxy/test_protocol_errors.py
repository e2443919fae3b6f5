"""The HTTP protocol layer, on raw sockets (issue 12, points 6 and 8): protocol errors answered in JSON, no empty
redirect for a trailing slash, the request-head limit exactly the documented 64 KiB, slow heads and bodies cut."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from modelgate_proxy.server.http_protocol import MAX_HEAD_BYTES
from tests.standins.faulty_provider import FaultyProvider

from .conftest import FAKE_KEY
from .harness import Proxy, endpoint, openai_entity, run_proxy

PATH = "/serving-endpoints/chat/invocations"
BODY = b'{"messages": [{"role": "user", "content": "hi"}]}'


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with FaultyProvider.running() as fp, run_proxy(
            tmp_path_factory.mktemp("protocol"), [endpoint("chat", [openai_entity(fp.base("ok"))])],
            secrets={"openai": {"api-key": FAKE_KEY}}, extra=["--head-timeout", "1", "--body-timeout", "2"]) as p:
        yield p


def _port(proxy: Proxy) -> int:
    return int(proxy.url.rsplit(":", 1)[1])


def _exchange(proxy: Proxy, data: bytes, timeout: float = 5) -> bytes:
    """Send ``data`` and read until the proxy closes the connection (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", _port(proxy)), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got = s.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not got:
                break
            out += got
            if b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:")]
                if length and len(rest) >= length[0]:
                    break
    return out


def _status_and_json(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"content-type: application/json" in head.lower(), raw[:400]
    return status, orjson.loads(body)


def _request(head_lines: list[bytes], body: bytes = BODY) -> bytes:
    return b"\r\n".join([b"POST " + PATH.encode() + b" HTTP/1.1", b"host: x", *head_lines]) + b"\r\n\r\n" + body


def test_the_well_formed_raw_request_is_answered(proxy: Proxy) -> None:
    status, body = _status_and_json(_exchange(proxy, _request([b"content-type: application/json",
                                                               b"content-length: %d" % len(BODY)])))
    assert status == 200
    assert body["choices"][0]["message"]["content"] == "hello"


@pytest.mark.parametrize("lines", [
    [b"content-length: abc"],
    [b"content-length: -5"],
    [b"content-length: 10", b"content-length: 12"],
    [b"content-length: %d" % len(BODY), b"transfer-encoding: chunked"],
    [b"x-evil: a\x01b", b"content-length: %d" % len(BODY)],
    [b"x-folded: one", b" two", b"content-length: %d" % len(BODY)],
    [b"bad header name: x", b"content-length: %d" % len(BODY)],
], ids=["cl-not-a-number", "cl-negative", "cl-twice", "cl-and-te", "control-char", "obs-fold", "space-in-name"])
def test_protocol_errors_are_json_400s(proxy: Proxy, lines: list[bytes]) -> None:
    raw = _exchange(proxy, _request(lines))
    assert raw.startswith(b"HTTP/1.1 400"), raw[:300]
    status, body = _status_and_json(raw)
    assert status == 400
    assert set(body) == {"error_code", "message"}
    assert body["error_code"] == "MALFORMED_REQUEST"


def test_a_protocol_error_on_an_openai_path_has_the_openai_shape(proxy: Proxy) -> None:
    raw = _exchange(proxy, b"POST /serving-endpoints/chat/completions HTTP/1.1\r\nhost: x\r\n"
                           b"content-length: 5\r\ncontent-length: 6\r\n\r\nhello")
    status, body = _status_and_json(raw)
    assert status == 400
    assert set(body["error"]) == {"message", "type", "param", "code"}


@pytest.mark.parametrize("path", ["/serving-endpoints/chat/invocations/", "/serving-endpoints/chat/completions/",
                                  "/healthz/"])
def test_a_trailing_slash_is_a_json_404_not_an_empty_redirect(proxy: Proxy, path: str) -> None:
    method = "GET" if path == "/healthz/" else "POST"
    r = httpx.request(method, proxy.url + path, content=BODY, headers={"content-type": "application/json"},
                      follow_redirects=False, timeout=5)
    assert r.status_code == 404, (r.status_code, r.headers, r.text)
    assert r.headers["content-type"].startswith("application/json")
    assert r.content


def _head_of(size: int) -> bytes:
    """A request head of exactly ``size`` bytes (request line, headers, the blank line), padded in one header."""
    base = _request([b"content-type: application/json", b"content-length: %d" % len(BODY), b"x-pad: "], body=b"")
    return base[:-4] + b"p" * (size - len(base)) + b"\r\n\r\n"


def test_the_head_limit_is_exactly_64_kib(proxy: Proxy) -> None:
    assert MAX_HEAD_BYTES == 64 * 1024
    head = _head_of(MAX_HEAD_BYTES)
    assert len(head) == MAX_HEAD_BYTES
    status, _ = _status_and_json(_exchange(proxy, head + BODY))
    assert status == 200
    head = _head_of(MAX_HEAD_BYTES + 1)
    status, body = _status_and_json(_exchange(proxy, head + BODY))
    assert status == 431
    assert "65536" in body["message"]
    # Sent in small pieces the limit is the same.
    with socket.create_connection(("127.0.0.1", _port(proxy)), timeout=5) as s:
        for i in range(0, len(head), 1000):
            s.sendall(head[i:i + 1000])
        data = s.recv(65536)
    assert data.startswith(b"HTTP/1.1 431")


def test_an_idle_keep_alive_connection_is_not_a_slow_head(proxy: Proxy) -> None:
    """The head timeout (1 s here) starts with a head's first byte, not when the previous request ended."""
    request = _request([b"content-type: application/json", b"content-length: %d" % len(BODY)])
    with socket.create_connection(("127.0.0.1", _port(proxy)), timeout=5) as s:
        for _ in range(2):
            s.sendall(request)
            got = b""
            while b"hello" not in got:
                chunk = s.recv(65536)
                assert chunk, got
                got += chunk
            assert got.startswith(b"HTTP/1.1 200"), got[:200]
            time.sleep(1.5)


def _open_slow(proxy: Proxy, data: bytes, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", _port(proxy)), timeout=10)
        s.sendall(data)
        socks.append(s)
    return socks


def _closed_within(sock: socket.socket, seconds: float, trickle: bytes = b"") -> tuple[bool, bytes]:
    """Whether the proxy closed ``sock`` within ``seconds`` (trickling ``trickle`` every 0.3 s meanwhile)."""
    deadline = time.monotonic() + seconds
    got = b""
    sock.settimeout(0.3)
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            if trickle:
                try:
                    sock.sendall(trickle)
                except OSError:
                    return True, got
            continue
        except OSError:
            return True, got
        if not chunk:
            return True, got
        got += chunk
    return False, got


def test_slow_loris_heads_and_bodies_are_cut(proxy: Proxy) -> None:
    heads = _open_slow(proxy, b"POST " + PATH.encode() + b" HTTP/1.1\r\nhost: x\r\n", 25)
    bodies = _open_slow(proxy, _request([b"content-type: application/json", b"content-length: 1000"], body=b"{"), 25)
    try:
        for s in heads:
            closed, got = _closed_within(s, 4, trickle=b"x")
            assert closed, "a slow request head was not cut"
            if got:
                status, _ = _status_and_json(got)
                assert status == 408
        for s in bodies:
            closed, got = _closed_within(s, 5, trickle=b" ")
            assert closed, "a slow request body was not cut"
            if got:
                status, body = _status_and_json(got)
                assert status == 408
                assert set(body) == {"error_code", "message"}
    finally:
        for s in heads + bodies:
            s.close()
    # The proxy still answers.
    status, _ = _status_and_json(_exchange(proxy, _request([b"content-type: application/json",
                                                            b"content-length: %d" % len(BODY)])))
    assert status == 200
