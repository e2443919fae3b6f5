"""The judge model's client: one chat call per prompt, to another ServingEndpoint of the proxy (run through
that endpoint's own pipeline, in the process) or to an OpenAI-compatible URL; each call bounded by the judge's
timeout, its latency observed; answers cached for identical prompts (:class:`VerdictCache`).

Every failure (timeout, transport error, non-2xx, an answer without text) is a :class:`NoVerdict` whose
message names what failed, never the prompt or the credential.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from time import monotonic, perf_counter
from typing import Any

import aiohttp
import orjson

from ...credentials import FileCredentials
from ...errors import GatewayError
from ...exchange import Completed, EndpointRuntime, Exchange, Outcome
from ...spec.gateway import GuardrailJudge
from ...upstream import Upstream
from ...usage_tokens import token_usage
from .judge_prompts import NoVerdict

_JUDGING: ContextVar[bool] = ContextVar("modelgate_judging", default=False)
"""Set while a judge endpoint's pipeline runs: a judge endpoint whose own guardrails would ask a judge gets no
verdict instead of a loop (an endpoint judging itself, or two judging each other)."""

LatencyObserver = Callable[[str, float], None]
"""Called with (outcome, seconds) after every judge call: outcome ``ok``, ``error`` or ``timeout``."""

MAX_ANSWER_BYTES = 64 * 1024
"""The most of a URL judge's answer read; a verdict is a few bytes."""
CACHE_ENTRIES = 4096
"""Verdicts kept per endpoint at most (least recently used dropped first)."""


@dataclass(slots=True)
class JudgeContext:
    """What a judge needs from the app: the endpoints (filled as they are built), the HTTP client, the
    credentials."""

    endpoints: Mapping[str, EndpointRuntime]
    upstream: Upstream
    credentials: FileCredentials


class VerdictCache:
    """Answers by the SHA-256 of their prompt, for ``ttl`` seconds, at most :data:`CACHE_ENTRIES`."""

    __slots__ = ("entries", "size", "ttl")

    def __init__(self, ttl: float, size: int = CACHE_ENTRIES) -> None:
        self.ttl, self.size = ttl, size
        self.entries: OrderedDict[bytes, tuple[float, str]] = OrderedDict()

    @staticmethod
    def key(prompt: str) -> bytes:
        return hashlib.sha256(prompt.encode()).digest()

    def get(self, key: bytes) -> str | None:
        hit = self.entries.get(key)
        if hit is None:
            return None
        if hit[0] < monotonic():
            del self.entries[key]
            return None
        self.entries.move_to_end(key)
        return hit[1]

    def put(self, key: bytes, answer: str) -> None:
        if self.ttl <= 0:
            return
        self.entries[key] = (monotonic() + self.ttl, answer)
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


class Judge:
    """Asks the judge named by ``spec`` (``endpoint`` or ``url``) for an answer to a prompt."""

    def __init__(self, spec: GuardrailJudge, context: JudgeContext, observe: LatencyObserver | None = None) -> None:
        self.spec = spec
        self.context = context
        self.observe = observe
        self.cache = VerdictCache(spec.cache_seconds)

    @property
    def named(self) -> bool:
        return self.spec.endpoint is not None or self.spec.url is not None

    async def ask(self, prompt: str) -> str:
        key = VerdictCache.key(prompt)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        started = perf_counter()
        outcome = "error"
        try:
            answer = await asyncio.wait_for(self._call(prompt), self.spec.timeout_seconds)
            outcome = "ok"
        except TimeoutError:
            outcome = "timeout"
            raise NoVerdict(f"the judge did not answer within {self.spec.timeout_seconds:g} seconds") from None
        finally:
            if self.observe is not None:
                self.observe(outcome, perf_counter() - started)
        self.cache.put(key, answer)
        return answer

    async def _call(self, prompt: str) -> str:
        body: dict[str, Any] = {"messages": [{"role": "user", "content": prompt}], "temperature": 0,
                                "max_tokens": 32}
        if self.spec.endpoint is not None:
            return await self._call_endpoint(self.spec.endpoint, body)
        if self.spec.url is not None:
            return await self._call_url(self.spec.url, body)
        raise NoVerdict("no judge model is configured")

    async def _call_endpoint(self, name: str, body: dict[str, Any]) -> str:
        runtime = self.context.endpoints.get(name)
        if runtime is None:
            raise NoVerdict(f"the judge endpoint {name!r} is not served by this proxy")
        if runtime.task != "llm/v1/chat":
            raise NoVerdict(f"the judge endpoint {name!r} is not a chat endpoint")
        if _JUDGING.get():
            raise NoVerdict(f"the judge endpoint {name!r} is asked from a judge's own guardrails")
        arrived = perf_counter()
        ex = Exchange(runtime, "openai", "llm/v1/chat", body, False, arrived,
                      deadline=arrived + self.spec.timeout_seconds)
        token = _JUDGING.set(True)
        try:
            result = await runtime.pipeline.run(ex)
        except GatewayError as err:
            ex.finish(Outcome(err.status, perf_counter() - arrived, None, err))
            raise NoVerdict(f"the judge endpoint {name!r} failed: {err.status}") from None
        finally:
            _JUDGING.reset(token)
        if not isinstance(result, Completed):
            raise NoVerdict(f"the judge endpoint {name!r} did not answer as a whole")
        ex.finish(Outcome(200, perf_counter() - arrived, result.body,
                          usage=token_usage(ex.task, ex.payload, result.body)))
        return _answer_text(result.body)

    async def _call_url(self, url: str, body: dict[str, Any]) -> str:
        headers = {"content-type": "application/json"}
        if self.spec.api_key is not None:
            try:
                key = self.context.credentials.resolve(self.spec.api_key, None,
                                                       field="aiGateway.guardrails.judge.apiKey")
            except GatewayError as err:
                raise NoVerdict(err.message) from None
            headers["authorization"] = f"Bearer {key}"
        body = {**body, "model": self.spec.model}
        try:
            async with self.context.upstream.session.post(
                    url.rstrip("/") + "/chat/completions", data=orjson.dumps(body), headers=headers) as resp:
                data = await resp.content.read(MAX_ANSWER_BYTES)
                if resp.status // 100 != 2:
                    raise NoVerdict(f"the judge answered HTTP {resp.status}")
        except (aiohttp.ClientError, OSError, GatewayError):
            raise NoVerdict("the judge could not be reached") from None
        try:
            answer = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise NoVerdict("the judge's answer is not JSON") from None
        return _answer_text(answer)


def _answer_text(body: Any) -> str:
    try:
        content = body["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise NoVerdict("the judge's answer has no message") from None
    if not isinstance(content, str):
        raise NoVerdict("the judge's answer has no text")
    return content
