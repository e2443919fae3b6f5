"""A TCP relay from the node's bridge address to the API server on loopback, so pods (the operator installed
by Helm) reach the API server inside the machine: there is no kube-proxy for the ``kubernetes`` Service, so
such pods get ``KUBERNETES_SERVICE_HOST``/``_PORT`` pointing here. TLS passes through untouched (the serving
certificate names the bridge address). At most ``MAX_CONNECTIONS`` at once; extra ones are closed.

    python -m modelgate_dev.node.relay --listen 10.244.77.1:6443 --to 127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

MAX_CONNECTIONS = 256
BUFFER = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(BUFFER):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def serve(listen: tuple[str, int], target: tuple[str, int]) -> None:
    slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if slots.locked():
            writer.close()
            return
        async with slots:
            try:
                up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*target), 10)
            except (OSError, TimeoutError):
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, *listen, reuse_address=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def _addr(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", type=_addr, required=True)
    parser.add_argument("--to", type=_addr, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.listen, args.to))


if __name__ == "__main__":
    main()
