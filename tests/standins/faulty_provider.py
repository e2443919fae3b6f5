"""A fault-injecting OpenAI-format provider: a raw asyncio HTTP/1.1 server whose misbehaviour each test picks.

Written on sockets rather than as an ASGI app so it can send what a real server framework would refuse to:
header bytes that are not latin-1 text, a stream cut without its terminator, a body larger than its
``Content-Length`` promises to be read in time. The first path segment selects the behaviour, so one stand-in
serves every endpoint of a manifest: the proxy's ``openaiApiBase`` is ``<url>/<mode>/v1``, and the provider
call arrives as ``/<mode>/v1/chat/completions`` (``/completions``, ``/embeddings``).

Modes (see :data:`MODES`):

- ``ok``: a valid answer of the path's task (a stream ending with ``data: [DONE]`` when the body asks for one).
- ``non_sse``: a 200 JSON answer although the body asked for a stream.
- ``no_terminator``: a stream of two chunks, then the connection closes without ``data: [DONE]``.
- ``long_line``: a stream whose first line never ends (``data: xxxx...`` for up to 256 MiB, no newline).
- ``huge``: a 200 JSON answer of 100 MiB (with ``Content-Length``); ``huge_chunked``: the same, chunked.
- ``echo_auth``: 401 whose error message repeats the request's ``Authorization`` header.
- ``echo_auth_stream``: a 200 stream whose error event repeats the ``Authorization`` header.
- ``big_error``: 500 with a 5 MiB error message.
- ``retry_euro`` / ``retry_ff``: 429 with ``Retry-After: €`` (UTF-8) / ``Retry-After: <byte 0xff>``.
- ``wrong_shape``: 200 JSON that is an object of the wrong shape (``{"choices": "nope"}``); ``wrong_shape_list``:
  a JSON list; ``no_choices``: ``{"id": "x"}``.
- ``drip``: 200 headers, then one byte of a JSON body every 2 s (forever).
- ``drip_stream``: a stream that sends one SSE comment byte every 2 s (forever).
- ``slow``: the answer comes after 3 s; :attr:`FaultyProvider.cancelled` counts calls whose connection the
  proxy closed before that.
- ``always_429``: 429 with ``Retry-After: 2`` (and OpenAI's ``x-ratelimit-reset-requests: 2s``), every call.
- ``once_429``: the first call of this mode 429 with ``Retry-After: 1``, the later ones a valid answer.
- ``down_503``: 503 without any reset hint, every call.
- ``silent_stream``: 200 event-stream headers, then nothing for 30 s (a provider that accepted and went quiet).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson

MODES = ("ok", "non_sse", "no_terminator", "long_line", "huge", "huge_chunked", "echo_auth", "echo_auth_stream",
         "big_error", "retry_euro", "retry_ff", "wrong_shape", "wrong_shape_list", "no_choices", "drip",
         "drip_stream", "slow", "always_429", "once_429", "down_503", "silent_stream")

HUGE_BYTES = 100 * 1024 * 1024
BIG_ERROR_BYTES = 5 * 1024 * 1024


def chat_answer(model: str = "gpt-4o-mini") -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def completion_answer() -> dict[str, Any]:
    return {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "text": "hello", "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def embedding_answer() -> dict[str, Any]:
    return {"object": "list", "model": "m", "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}],
            "usage": {"prompt_tokens": 1, "total_tokens": 1}}


def _chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {"content": content} if content is not None else {}
    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _head(status: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    reason = {200: b"OK", 401: b"Unauthorized", 429: b"Too Many Requests", 500: b"Internal Server Error"}
    lines = [b"HTTP/1.1 %d %s" % (status, reason.get(status, b"X"))]
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _json(status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> bytes:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(extra or [])]
    return _head(status, headers) + body


_SSE_HEAD = _head(200, [(b"content-type", b"text/event-stream"), (b"connection", b"close")])


class FaultyProvider:
    """Serve on 127.0.0.1 in a background thread (``with FaultyProvider.running() as fp: fp.url``)."""

    def __init__(self) -> None:
        self.url = ""
        self.calls: dict[str, int] = {}
        """Provider calls per mode."""
        self.open = 0
        """Connections open right now."""
        self.cancelled = 0
        """``slow`` calls whose connection closed before the answer was due."""
        self.auth_seen: list[str] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    @contextlib.contextmanager
    def running(cls) -> Iterator[FaultyProvider]:
        fp = cls()
        started = threading.Event()
        stop: list[asyncio.Event] = []

        async def main() -> None:
            server = await asyncio.start_server(fp._serve, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            fp.url = f"http://127.0.0.1:{port}"
            fp._loop = asyncio.get_running_loop()
            stop.append(asyncio.Event())
            started.set()
            async with server:
                await stop[0].wait()

        thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
        thread.start()
        if not started.wait(10):
            raise RuntimeError("the faulty provider did not start")
        try:
            yield fp
        finally:
            assert fp._loop is not None
            fp._loop.call_soon_threadsafe(stop[0].set)
            thread.join(timeout=10)

    def base(self, mode: str) -> str:
        """The ``openaiApiBase`` prefix (without ``/v1``) of ``mode``, for ``harness.openai_entity``."""
        assert mode in MODES, mode
        return f"{self.url}/{mode}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                _method, path, _version = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                mode = path.strip("/").split("/", 1)[0]
                self.calls[mode] = self.calls.get(mode, 0) + 1
                self.auth_seen.append(headers.get("authorization", ""))
                keep = await self._answer(mode, path, headers, body, reader, writer)
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self.open -= 1
            with contextlib.suppress(Exception):
                writer.close()

    async def _answer(self, mode: str, path: str, headers: dict[str, str], raw: bytes,
                      reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Answer one call; False closes the connection."""
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            body = {}
        stream = isinstance(body, dict) and body.get("stream") is True
        auth = headers.get("authorization", "")
        if path.endswith("/embeddings"):
            answer = embedding_answer()
        elif path.endswith("/chat/completions"):
            answer = chat_answer()
        else:
            answer = completion_answer()
        if mode == "ok":
            if stream:
                writer.write(_SSE_HEAD + _chunk("hel") + _chunk("lo", "stop") + b"data: [DONE]\n\n")
                await writer.drain()
                return False
            writer.write(_json(200, orjson.dumps(answer)))
        elif mode == "non_sse":
            writer.write(_json(200, orjson.dumps(answer)))
        elif mode == "no_terminator":
            writer.write(_SSE_HEAD + _chunk("hel") + _chunk("lo"))
            await writer.drain()
            return False
        elif mode == "long_line":
            writer.write(_SSE_HEAD + b"data: ")
            piece = b"x" * (1024 * 1024)
            for _ in range(256):
                writer.write(piece)
                await writer.drain()
            return False
        elif mode in ("huge", "huge_chunked"):
            await self._huge(writer, chunked=mode == "huge_chunked")
            return False
        elif mode == "echo_auth":
            message = f"Incorrect API key provided: {auth}. You can find your API key at https://example.invalid"
            writer.write(_json(401, orjson.dumps({"error": {"message": message, "type": "invalid_request_error",
                                                            "param": None, "code": "invalid_api_key"}})))
        elif mode == "echo_auth_stream":
            event = {"error": {"message": f"the key {auth} was revoked mid-stream", "type": "server_error"}}
            writer.write(_SSE_HEAD + _chunk("hel") + b"data: " + orjson.dumps(event) + b"\n\n")
            await writer.drain()
            return False
        elif mode == "big_error":
            message = "E" * BIG_ERROR_BYTES
            writer.write(_json(500, orjson.dumps({"error": {"message": message, "type": "server_error"}})))
        elif mode == "retry_euro":
            writer.write(_json(429, b'{"error": {"message": "slow down"}}', [(b"retry-after", "€".encode())]))
        elif mode == "retry_ff":
            writer.write(_json(429, b'{"error": {"message": "slow down"}}', [(b"retry-after", b"\xff")]))
        elif mode == "wrong_shape":
            writer.write(_json(200, b'{"choices": "nope", "data": "nope"}'))
        elif mode == "wrong_shape_list":
            writer.write(_json(200, b'[1, 2, 3]'))
        elif mode == "no_choices":
            writer.write(_json(200, b'{"id": "x"}'))
        elif mode in ("drip", "drip_stream"):
            if mode == "drip":
                writer.write(_head(200, [(b"content-type", b"application/json"), (b"content-length", b"1000000")]))
                byte = b" "
            else:
                writer.write(_SSE_HEAD)
                byte = b":"
            while True:
                writer.write(byte)
                await writer.drain()
                await asyncio.sleep(2)
        elif mode == "slow":
            due = time.monotonic() + 3
            try:
                # The proxy closing its connection shows as EOF on the reader.
                got = await asyncio.wait_for(reader.read(1), timeout=3)
                if not got and time.monotonic() < due:
                    self.cancelled += 1
                    return False
            except TimeoutError:
                pass
            writer.write(_json(200, orjson.dumps(answer)))
        elif mode == "always_429" or (mode == "once_429" and self.calls[mode] == 1):
            hints = [(b"retry-after", b"2"), (b"x-ratelimit-reset-requests", b"2s")] if mode == "always_429" \
                else [(b"retry-after", b"1")]
            writer.write(_json(429, b'{"error": {"message": "Rate limit reached", "type": "requests"}}', hints))
        elif mode == "once_429":
            writer.write(_json(200, orjson.dumps(answer)) if not stream else
                         _SSE_HEAD + _chunk("hel") + _chunk("lo", "stop") + b"data: [DONE]\n\n")
            await writer.drain()
            return not stream
        elif mode == "down_503":
            writer.write(_json(503, b'{"error": {"message": "overloaded"}}'))
        elif mode == "silent_stream":
            writer.write(_SSE_HEAD)
            await writer.drain()
            await asyncio.sleep(30)
            return False
        else:
            writer.write(_json(404, b'{"error": {"message": "no such mode"}}'))
        await writer.drain()
        return True

    async def _huge(self, writer: asyncio.StreamWriter, *, chunked: bool) -> None:
        prefix = b'{"id": "x", "object": "chat.completion", "model": "m", "pad": "'
        suffix = b'", "choices": []}'
        size = HUGE_BYTES
        if chunked:
            writer.write(_head(200, [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")]))
        else:
            writer.write(_head(200, [(b"content-type", b"application/json"), (b"content-length", str(size).encode())]))
        piece = b"p" * (1024 * 1024)
        pieces = [prefix] + [piece] * ((size - len(prefix) - len(suffix)) // len(piece))
        sent = sum(len(p) for p in pieces)
        pieces.append(b"p" * (size - len(suffix) - sent) + suffix)
        for part in pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
            await writer.drain()
        if chunked:
            writer.write(b"0\r\n\r\n")
        await writer.drain()
