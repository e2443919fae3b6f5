"""Why the proxy's hot path uses aiohttp, not httpx: CPU per request of one client call loop against a local
stand-in, in one run.

    .venv/bin/python bench/http_clients.py [--calls 3000] [--concurrency 1 16] [--rounds 3]

The stand-in (a minimal HTTP/1.1 keep-alive server answering every POST with a fixed chat-completion JSON)
runs in its own process, so the figures are the client's CPU alone (``time.process_time`` of this process
around the loop). Each client makes ``--calls`` POSTs of a small JSON body with a pooled session, the way the
proxy calls a provider (``aiohttp.ClientSession.request`` + ``read``; ``httpx.AsyncClient.post``), at each
concurrency; the rounds alternate the two clients so that drift on a shared machine hits both. Only
127.0.0.1 is used. Dev tooling: not part of the runtime package.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import statistics
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx

ANSWER = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "bench",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
}).encode()
RESPONSE = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: "
            + str(len(ANSWER)).encode() + b"\r\n\r\n" + ANSWER)
BODY = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "Say hello"}]}).encode()
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench-not-a-real-key"}


class _StandIn(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            length = 0
            for line in self.buf[:head_end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            end = head_end + 4 + length
            if len(self.buf) < end:
                return
            self.buf = self.buf[end:]
            self.transport.write(RESPONSE)


def _serve(sock: socket.socket) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_StandIn, sock=sock)
        await server.serve_forever()

    asyncio.run(main())


async def _aiohttp_loop(url: str, calls: int, concurrency: int) -> float:
    connector = aiohttp.TCPConnector(limit=1024, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        async def one() -> None:
            resp = await session.request("POST", url, data=BODY, headers=HEADERS)
            try:
                await resp.read()
            finally:
                resp.release()

        return await _timed(one, calls, concurrency)


async def _httpx_loop(url: str, calls: int, concurrency: int) -> float:
    limits = httpx.Limits(max_connections=1024, max_keepalive_connections=1024)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:
        async def one() -> None:
            resp = await client.post(url, content=BODY, headers=HEADERS)
            resp.read()

        return await _timed(one, calls, concurrency)


async def _timed(one: Callable[[], Awaitable[None]], calls: int, concurrency: int) -> float:
    """CPU seconds per call of ``calls`` calls made by ``concurrency`` workers (after a warm-up)."""
    for _ in range(50):
        await one()

    async def worker(n: int) -> None:
        for _ in range(n):
            await one()

    share = [calls // concurrency + (1 if i < calls % concurrency else 0) for i in range(concurrency)]
    started = time.process_time()
    await asyncio.gather(*(worker(n) for n in share))
    return (time.process_time() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1/chat/completions"
    server = multiprocessing.get_context("fork").Process(target=_serve, args=(sock,), daemon=True)
    server.start()
    try:
        print(f"{args.calls} calls per loop, {args.rounds} rounds, client CPU per call (median):")
        for concurrency in args.concurrency:
            figures: dict[str, list[float]] = {"aiohttp": [], "httpx": []}
            for _ in range(args.rounds):
                figures["aiohttp"].append(asyncio.run(_aiohttp_loop(url, args.calls, concurrency)))
                figures["httpx"].append(asyncio.run(_httpx_loop(url, args.calls, concurrency)))
            a, h = statistics.median(figures["aiohttp"]), statistics.median(figures["httpx"])
            print(f"  concurrency {concurrency:>3}: aiohttp {a * 1e6:7.1f} us   httpx {h * 1e6:7.1f} us   "
                  f"httpx / aiohttp = {h / a:.2f}x")
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()
