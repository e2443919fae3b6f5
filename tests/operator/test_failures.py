"""Operator failures map to kopf's TemporaryError / PermanentError in one place, and the reconciler's own
retries follow the same judgement."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest
from pydantic import ValidationError

from modelgate_operator import failures, handlers
from modelgate_operator.kube import KubeError
from modelgate_operator.reconcile import Reconciler
from modelgate_operator.render import ProxyDefaults
from modelgate_proxy.spec import ServingEndpointSpec


def _kube_error(code: int) -> KubeError:
    return KubeError("apply", "Deployment", "ns", "e", code, "why")


def _invalid_spec() -> ValidationError:
    try:
        ServingEndpointSpec.model_validate({"servedEntities": "not a list"})
    except ValidationError as exc:
        return exc
    raise AssertionError("the spec should not validate")


@pytest.mark.parametrize(
    ("code", "delay"),
    [(0, failures.BUSY_DELAY), (408, failures.BUSY_DELAY), (409, failures.CONFLICT_DELAY),
     (429, failures.BUSY_DELAY), (500, failures.BUSY_DELAY), (503, failures.BUSY_DELAY),
     (504, failures.BUSY_DELAY), (401, failures.DEFAULT_DELAY), (403, failures.DEFAULT_DELAY)],
)  # fmt: skip
def test_api_server_trouble_is_temporary(code: int, delay: float) -> None:
    error = failures.kopf_error(_kube_error(code))
    assert isinstance(error, kopf.TemporaryError)
    assert error.delay == delay
    assert f"({code})" in str(error)


@pytest.mark.parametrize("code", [400, 404, 405, 413, 415, 422])
def test_a_rejected_manifest_is_permanent(code: int) -> None:
    assert isinstance(failures.kopf_error(_kube_error(code)), kopf.PermanentError)


def test_an_unreadable_spec_is_permanent_and_anything_unforeseen_temporary() -> None:
    assert isinstance(failures.kopf_error(_invalid_spec()), kopf.PermanentError)
    unforeseen = failures.kopf_error(RuntimeError("boom"))
    assert isinstance(unforeseen, kopf.TemporaryError)
    assert unforeseen.delay == failures.DEFAULT_DELAY
    already = kopf.PermanentError("x")
    assert failures.kopf_error(already) is already


class _FailingCleanup:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.locks: dict[tuple[str, str], asyncio.Lock] = {}

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        return self.locks.setdefault((namespace, name), asyncio.Lock())

    async def cleanup(self, namespace: str, name: str, uid: str) -> None:
        raise self.exc


@pytest.mark.parametrize(("code", "kind"), [(503, kopf.TemporaryError), (422, kopf.PermanentError)])
def test_the_delete_handler_raises_the_mapped_kopf_error(code: int, kind: type[Exception]) -> None:
    memo: Any = kopf.Memo(reconciler=_FailingCleanup(_kube_error(code)))
    with pytest.raises(kind) as raised:
        asyncio.run(handlers.delete_endpoint(name="e", namespace="ns", uid="u", memo=memo))
    assert isinstance(raised.value.__cause__, KubeError)


@pytest.mark.parametrize(("exc", "retried"), [(_kube_error(503), True), (_kube_error(409), True),
                                              (_kube_error(422), False), (_invalid_spec(), False)])  # fmt: skip
def test_the_reconciler_retries_only_temporary_failures(exc: Exception, retried: bool) -> None:
    async def go() -> bool:
        reconciler = Reconciler(kube=None, defaults=ProxyDefaults())  # type: ignore[arg-type]

        async def failing(body: Any) -> Any:
            raise exc

        reconciler._reconcile_now = failing  # type: ignore[method-assign]
        body = {"metadata": {"namespace": "ns", "name": "e", "uid": "u", "generation": 1}}
        with pytest.raises(type(exc)):
            await reconciler.reconcile(body)
        scheduled = ("ns", "e") in reconciler._retries
        await reconciler.close()
        return scheduled

    assert asyncio.run(go()) is retried
