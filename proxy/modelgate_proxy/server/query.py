"""The query routes, as lean ASGI handlers: read, check, run the endpoint's pipeline, answer.

- ``POST /serving-endpoints/{name}/invocations``: the Databricks query body; Databricks error shape.
- ``POST /serving-endpoints/chat/completions`` | ``/completions`` | ``/embeddings``: OpenAI bodies with
  ``model`` = endpoint name; OpenAI error shape.
"""

from __future__ import annotations

import logging
from time import perf_counter
from typing import Any

import orjson

from ..error_shapes import Shape
from ..errors import EndpointNotFound, GatewayError, MalformedRequest, UnsupportedTask
from ..exchange import Api, BufferedStream, Completed, EndpointRuntime, Exchange, Outcome
from ..spec import Task
from ..usage_tokens import token_usage
from .asgi import Receive, Scope, Send, send_bytes
from .body import ClientGone, read_json_object
from .error_responses import error_response
from .query_checks import check_payload, check_task_field, merge_extra_params, take_tracking_fields
from .state import GatewayState
from .streaming import replay_response, stream_response

log = logging.getLogger("modelgate.proxy")

OPENAI_PATHS: dict[Task, str] = {
    "llm/v1/chat": "/serving-endpoints/chat/completions",
    "llm/v1/completions": "/serving-endpoints/completions",
    "llm/v1/embeddings": "/serving-endpoints/embeddings",
}


class QueryRoute:
    """Shared flow of both query APIs; subclasses find the endpoint and the task."""

    api: Api
    error_shape: Shape
    """The error shape of this route's answers (the API's own, unless a subclass says otherwise)."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state

    def resolve(self, scope: Scope, payload: dict[str, Any]) -> tuple[EndpointRuntime, Task]:
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        arrived = perf_counter()
        ex: Exchange | None = None
        endpoint = ""
        try:
            payload = await read_json_object(scope, receive, self.state.max_body_bytes)
            runtime, task = self.resolve(scope, payload)
            endpoint = runtime.name
            merge_extra_params(payload)
            client_request_id, usage_context = take_tracking_fields(payload)
            check_task_field(task, payload, endpoint)
            stream = check_payload(task, payload)
            ex = Exchange(runtime, self.api, task, payload, stream, arrived, headers=scope["headers"],
                          client_request_id=client_request_id, usage_context=usage_context)
            result = await runtime.pipeline.run(ex)
        except ClientGone:
            return
        except GatewayError as err:
            await self.fail(scope, receive, send, err, endpoint, ex)
            return
        except Exception:
            log.exception("unexpected error while serving endpoint %r", endpoint)
            await self.fail(scope, receive, send, GatewayError("internal error in the proxy"), endpoint, ex)
            return
        self.state.metrics.count_request(endpoint, 200)
        if isinstance(result, Completed):
            await self.reply(ex, result, send)
        elif isinstance(result, BufferedStream):
            await replay_response(ex, result, send)
        else:
            await stream_response(ex, result, receive, send)

    async def reply(self, ex: Exchange, result: Completed, send: Send) -> None:
        entity = result.entity
        body = orjson.dumps(result.body)
        entity.metrics.usage(result.body.get("usage"))
        overhead = perf_counter() - ex.arrived - ex.upstream_seconds
        headers = [
            (b"served-model-name", entity.name_header),
            (b"x-modelgate-overhead-ms", f"{overhead * 1000:.3f}".encode()),
        ]
        if ex.response_headers is not None:
            headers.extend(ex.response_headers)
        try:
            await send_bytes(send, 200, body, headers)
        finally:
            latency = perf_counter() - ex.arrived
            entity.metrics.duration.observe(latency)
            entity.metrics.overhead.observe(overhead)
            if ex.finishers is not None:
                ex.finish(Outcome(200, latency, result.body, usage=token_usage(ex.task, ex.payload, result.body)))

    async def fail(self, scope: Scope, receive: Receive, send: Send, err: GatewayError, endpoint: str,
                   ex: Exchange | None) -> None:
        if err.status >= 500:
            log.warning("endpoint %r: %s %s", endpoint, err.status, err.message)
        headers: list[tuple[bytes, bytes]] = []
        if ex is not None:
            # The proxy's own share of a failed call, too: a slow error path is overhead a caller pays.
            overhead = perf_counter() - ex.arrived - ex.upstream_seconds
            headers.append((b"x-modelgate-overhead-ms", f"{overhead * 1000:.3f}".encode()))
            if ex.entity is not None:
                headers.append((b"served-model-name", ex.entity.name_header))
                ex.entity.metrics.duration.observe(perf_counter() - ex.arrived)
                ex.entity.metrics.overhead.observe(overhead)
        if ex is not None and ex.response_headers is not None:
            headers.extend(ex.response_headers)
        self.state.metrics.count_request(endpoint, err.status)
        try:
            await error_response(self.error_shape, err, headers)(scope, receive, send)
        finally:
            if ex is not None and ex.finishers is not None:
                usage = token_usage(ex.task, ex.payload, ex.answer) if ex.answer is not None else None
                ex.finish(Outcome(err.status, perf_counter() - ex.arrived, None, err, usage=usage))


class InvocationsRoute(QueryRoute):
    """``/serving-endpoints/{name}/invocations``: the endpoint's own task; ``model`` is not needed."""

    api: Api = "databricks"
    error_shape: Shape = "databricks"

    def resolve(self, scope: Scope, payload: dict[str, Any]) -> tuple[EndpointRuntime, Task]:
        name = scope["path_params"]["name"]
        runtime = self.state.endpoints.get(name)
        if runtime is None:
            raise EndpointNotFound(f"the serving endpoint {name[:253]!r} does not exist")
        payload.pop("model", None)
        return runtime, runtime.task


class OpenAIRoute(QueryRoute):
    """``/serving-endpoints/<task path>`` with ``model`` = the endpoint's name."""

    api: Api = "openai"
    error_shape: Shape = "openai"

    def __init__(self, state: GatewayState, task: Task) -> None:
        super().__init__(state)
        self.task: Task = task

    def resolve(self, scope: Scope, payload: dict[str, Any]) -> tuple[EndpointRuntime, Task]:
        model = payload.pop("model", None)
        if model is None:
            raise MalformedRequest("missing required field 'model' (the serving endpoint's name)", param="model")
        if not isinstance(model, str):
            raise MalformedRequest("'model' must be a string (the serving endpoint's name)", param="model")
        runtime = self.state.endpoints.get(model)
        if runtime is None:
            raise EndpointNotFound(
                f"The model {model[:253]!r} does not exist: there is no serving endpoint of that name", param="model"
            )
        if runtime.task != self.task:
            raise UnsupportedTask(
                f"the endpoint {model!r} serves {runtime.task}, not {self.task}; "
                f"use {OPENAI_PATHS[runtime.task]}",
                param="model",
            )
        return runtime, self.task
