"""The one ClusterRoleBinding that lets proxies call TokenReview and SubjectAccessReview.

Both review APIs are cluster-scoped, so even a namespaced install needs one ClusterRoleBinding of the
``modelgate-proxy-reviews`` ClusterRole (``create`` on the two reviews, nothing more). The chart creates the
binding (with no subjects) and grants the operator only ``get``/``update`` on it by name and ``bind`` on that
ClusterRole by name. The operator keeps its subjects: the ``modelgate-proxy`` ServiceAccount of every namespace
with a bearer-mode endpoint. Updates carry the ``resourceVersion`` read (optimistic concurrency), and are retried
a few times on a conflict. What happens when the binding cannot be read or written is reported in the endpoint's
``Authenticated`` condition: the proxy then answers 503 to Kubernetes tokens and queries needing RBAC, never allows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx2
from lightkube import ApiError
from lightkube.models.rbac_v1 import Subject
from lightkube.resources.rbac_authorization_v1 import ClusterRoleBinding

from .kube import Kube
from .render_auth import SERVICE_ACCOUNT

CONFLICT_RETRIES = 5
RECHECK_SECONDS = 300.0
"""A namespace found bound is not checked again for this long (an edit that removed it is repaired then)."""


@dataclass(frozen=True, slots=True)
class BindingProblem:
    """Why the proxies of a namespace may not be able to call the reviews (no credential in it)."""

    reason: str
    message: str


class ReviewsBinding:
    """Adds and removes ``system:serviceaccount:<ns>:<account>`` (``modelgate-proxy``, or the workspace gateway's
    ``modelgate-gateway``) in the binding named ``name``."""

    def __init__(self, kube: Kube, name: str | None) -> None:
        self.kube = kube
        self.name = name or None
        self._bound: dict[tuple[str, str], float] = {}

    async def ensure(self, namespace: str, account: str = SERVICE_ACCOUNT) -> BindingProblem | None:
        if self.name is None:
            return None  # --proxy-reviews-binding '': whoever installed the operator binds the ServiceAccounts
        if time.monotonic() - self._bound.get((namespace, account), -RECHECK_SECONDS) < RECHECK_SECONDS:
            return None
        problem = await self._update(namespace, account, add=True)
        if problem is None:
            self._bound[(namespace, account)] = time.monotonic()
        return problem

    async def remove(self, namespace: str, account: str = SERVICE_ACCOUNT) -> BindingProblem | None:
        self._bound.pop((namespace, account), None)
        if self.name is None:
            return None
        return await self._update(namespace, account, add=False)

    async def _update(self, namespace: str, account: str, *, add: bool) -> BindingProblem | None:
        assert self.name is not None
        for _ in range(CONFLICT_RETRIES):
            try:
                binding = await self.kube.client.get(ClusterRoleBinding, self.name)
            except ApiError as exc:
                return self._problem("read", exc)
            except httpx2.HTTPError as exc:
                return BindingProblem("ReviewsBindingUnavailable", f"reading ClusterRoleBinding {self.name} "
                                      f"failed: {type(exc).__name__}")  # fmt: skip
            subjects = list(binding.subjects or [])
            mine = [s for s in subjects if s.kind == "ServiceAccount" and s.name == account
                    and s.namespace == namespace]  # fmt: skip
            if bool(mine) == add:
                return None
            if add:
                subjects.append(Subject(kind="ServiceAccount", name=account, namespace=namespace))
            else:
                subjects = [s for s in subjects if s not in mine]
            binding.subjects = sorted(subjects, key=lambda s: (s.namespace or "", s.kind, s.name))
            try:
                await self.kube.client.replace(binding, field_manager="modelgate-operator")
            except ApiError as exc:
                if exc.status.code == 409:
                    continue  # changed since it was read: read it again
                return self._problem("update", exc)
            except httpx2.HTTPError as exc:
                return BindingProblem("ReviewsBindingUnavailable", f"updating ClusterRoleBinding {self.name} "
                                      f"failed: {type(exc).__name__}")  # fmt: skip
            return None
        return BindingProblem("ReviewsBindingConflict", f"ClusterRoleBinding {self.name} kept changing")

    def _problem(self, action: str, exc: ApiError) -> BindingProblem:
        code = int(exc.status.code or 0)
        if code == 404:
            return BindingProblem("ReviewsBindingMissing", f"ClusterRoleBinding {self.name} does not exist "
                                  "(the chart creates it): the proxy cannot check Kubernetes tokens or the query "
                                  "permission and answers 503")  # fmt: skip
        return BindingProblem("ReviewsBindingForbidden" if code == 403 else "ReviewsBindingFailed",
                              f"could not {action} ClusterRoleBinding {self.name} ({code}): "
                              f"{exc.status.message or exc.status.reason}")  # fmt: skip
