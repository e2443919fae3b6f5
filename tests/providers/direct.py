"""Calling a stand-in with a provider adapter directly, without the proxy: build the request, send it over HTTP
as the proxy would, then read the answer (or the error) or decode the stream with the adapter."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
from multidict import CIMultiDict

from modelgate_proxy.providers.base import CallContext, Provider, UpstreamRequest

Sent = tuple[int, Mapping[str, str], bytes]
"""Status, headers and body of the stand-in's answer."""


async def send(request: UpstreamRequest) -> Sent:
    async with aiohttp.ClientSession() as session, session.post(
        request.url, data=request.body, headers=request.headers
    ) as resp:
        return resp.status, CIMultiDict(resp.headers), await resp.read()


def call(provider: Provider, context: CallContext, payload: dict[str, Any]) -> Sent:
    async def run() -> Sent:
        return await send(await provider.build_request(context, payload))

    return asyncio.run(run())


def answer(provider: Provider, context: CallContext, payload: dict[str, Any]) -> dict[str, Any]:
    """The adapter's reading of the answer; the adapter's error is raised for a non-200 answer."""
    status, headers, body = call(provider, context, payload)
    if status != 200:
        raise provider.parse_error(status, body, headers)
    return provider.parse_response(context, payload, body)


def stream(provider: Provider, context: CallContext, payload: dict[str, Any], *, piece: int) -> tuple[Mapping[str, str], list[dict[str, Any]]]:
    """The headers of a streamed 200 answer and its chunks as the adapter decodes them, fed ``piece`` bytes at a
    time."""
    status, headers, body = call(provider, context, {**payload, "stream": True})
    assert status == 200, body
    decoder = provider.stream_decoder(context, payload)
    chunks = []
    for i in range(0, len(body), piece):
        chunks.extend(decoder.feed(body[i : i + piece]))
    return headers, chunks + decoder.close()
