"""Shared pieces of the provider translation tests: a model spec, credentials, byte-by-byte stream feeding."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import orjson

from modelgate_proxy.providers.base import CallContext, Provider, StreamDecoder, UpstreamRequest
from modelgate_proxy.spec import ExternalModel, Task


class PlainCredentials:
    """Resolves only plaintext values (references are the credentials module's business)."""

    def resolve(self, reference: str | None, plaintext: str | None, *, field: str) -> str:
        assert plaintext is not None, field
        return plaintext


class NoHttp:
    async def post_form(self, url: str, data: Mapping[str, str], *, timeout: float) -> tuple[int, bytes]:
        raise AssertionError("no side calls expected")


def external_model(provider: str, name: str, task: Task, config: dict[str, Any]) -> ExternalModel:
    field = {"anthropic": "anthropicConfig", "cohere": "cohereConfig", "ai21labs": "ai21labsConfig", "palm": "palmConfig"}
    return ExternalModel.model_validate({"name": name, "provider": provider, "task": task, field[provider]: config})


def ctx(task: Task = "llm/v1/chat", *, stream: bool = False, include_usage: bool = True) -> CallContext:
    return CallContext(endpoint="ep", entity="entity", task=task, stream=stream, include_usage=include_usage)


def build(provider: Provider, context: CallContext, payload: dict[str, Any]) -> tuple[UpstreamRequest, dict[str, Any]]:
    request = asyncio.run(provider.build_request(context, payload))
    return request, orjson.loads(request.body)


def feed_bytewise(decoder: StreamDecoder, data: bytes) -> list[dict[str, Any]]:
    """Feed one byte at a time, as the worst network would, then close."""
    chunks: list[dict[str, Any]] = []
    for i in range(len(data)):
        chunks.extend(decoder.feed(data[i : i + 1]))
    chunks.extend(decoder.close())
    return chunks


def joined_content(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])


def joined_arguments(chunks: list[dict[str, Any]], index: int = 0) -> str:
    parts = []
    for chunk in chunks:
        for call in (chunk["choices"][0]["delta"].get("tool_calls") or []) if chunk["choices"] else []:
            if call["index"] == index:
                parts.append(call["function"].get("arguments") or "")
    return "".join(parts)
