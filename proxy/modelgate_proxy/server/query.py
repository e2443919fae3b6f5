"""The query routes, as lean ASGI handlers: read, check, run the endpoint's pipeline, answer.

- ``POST /serving-endpoints/{name}/invocations``: the Databricks query body; Databricks error shape.
- ``POST /serving-endpoints/chat/completions`` | ``/completions`` | ``/embeddings``: OpenAI bodies with
  ``model`` = endpoint name; OpenAI error shape.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from time import perf_counter
from typing import Any

import orjson

from ..budget import ByteBudget, Ticket
from ..error_shapes import Shape
from ..errors import DeadlineExceeded, EndpointNotFound, GatewayError, MalformedRequest, UnsupportedTask
from ..exchange import Api, Completed, EndpointRuntime, Exchange, Outcome, Result
from ..spec import Task
from ..usage_tokens import token_usage
from .asgi import Receive, Scope, Send, send_bytes
from .body import ClientGone, read_json_object
from .error_responses import error_response
from .http_protocol import ON_DISCONNECT
from .query_checks import check_payload, check_task_field, merge_extra_params, take_tracking_fields
from .state import GatewayState
from .streaming import stream_response

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
        ticket = (self.state.budget or _UNBOUNDED).ticket()
        try:
            await self.serve(scope, receive, send, ticket)
        finally:
            ticket.release()

    async def serve(self, scope: Scope, receive: Receive, send: Send, ticket: Ticket) -> None:
        arrived = perf_counter()
        ex: Exchange | None = None
        endpoint = ""
        try:
            payload = await read_json_object(scope, receive, self.state.max_body_bytes, ticket)
            runtime, task = self.resolve(scope, payload)
            endpoint = runtime.name
            merge_extra_params(payload)
            client_request_id, usage_context = take_tracking_fields(payload)
            check_task_field(task, payload, endpoint)
            stream = check_payload(task, payload)
            ex = Exchange(runtime, self.api, task, payload, stream, arrived, headers=scope["headers"],
                          client_request_id=client_request_id, usage_context=usage_context, ticket=ticket,
                          deadline=arrived + self.timeout(runtime))
            result = await _run(ex, scope, receive)
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
        else:
            await stream_response(ex, result, receive, send)

    def timeout(self, runtime: EndpointRuntime) -> float:
        """The endpoint's total request timeout (``spec.proxy.requestTimeoutSeconds``), or the process's."""
        proxy = runtime.spec.proxy
        if proxy is not None and proxy.request_timeout_seconds is not None:
            return float(proxy.request_timeout_seconds)
        return self.state.request_timeout

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
                ex.finish(Outcome(200, latency, result.body, usage=token_usage(ex.task, ex.payload, result.body),
                                  body_json=body))

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


_UNBOUNDED = ByteBudget(limit=1 << 62)


async def _caller_gone(receive: Receive) -> None:
    """Returns when the caller disconnects (the body was read before: only ``http.disconnect`` comes)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _run(ex: Exchange, scope: Scope, receive: Receive) -> Result:
    """Run the pipeline until it answers; cancel it (and with it the provider call) when the caller goes away
    (:class:`ClientGone`) or the request's deadline passes (:class:`DeadlineExceeded`, a 504).

    This is on every request's path, so it costs no task of its own: the pipeline runs in the request's task,
    which a timer (the deadline) or the connection's loss cancels. The connection's loss is learnt from the
    proxy's HTTP protocol (:data:`~.http_protocol.ON_DISCONNECT` in the scope); under another server, from a
    task waiting for ``http.disconnect``."""
    task = asyncio.current_task()
    assert task is not None
    why: list[str] = []

    def stop(reason: str) -> None:
        if not why:  # the first reason wins; after the pipeline ended, none applies
            why.append(reason)
            task.cancel()

    def gone(_watcher: object = None) -> None:
        stop("gone")

    loop = asyncio.get_running_loop()
    timer = loop.call_at(loop.time() + (ex.deadline - perf_counter()), stop, "deadline")
    callbacks: list[Callable[[], None]] | None = scope.get(ON_DISCONNECT)
    watcher: asyncio.Future[None] | None = None
    if callbacks is not None:
        callbacks.append(gone)
    else:
        watcher = asyncio.ensure_future(_caller_gone(receive))
        watcher.add_done_callback(gone)
    stopped: str | None = None
    try:
        result = await ex.endpoint.pipeline.run(ex)
    except asyncio.CancelledError:
        if why and task.uncancel() == 0:
            if why[0] == "gone":
                raise ClientGone() from None
            raise DeadlineExceeded(f"the request did not complete within its deadline of "
                                   f"{ex.deadline - ex.arrived:g} seconds") from None
        raise
    finally:
        stopped = why[0] if why else None
        why.append("done")
        timer.cancel()
        if callbacks is not None:
            callbacks.remove(gone)
        if watcher is not None:
            watcher.cancel()
    if stopped is not None:
        task.uncancel()  # the pipeline swallowed our cancellation and answered all the same
    return result


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
