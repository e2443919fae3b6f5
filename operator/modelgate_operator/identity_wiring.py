"""Before an endpoint's children are applied: the identity its proxy runs as and the rights that identity has.

- the namespace's ``modelgate-proxy`` ServiceAccount (shared by its proxies, owned by no endpoint);
- in bearer mode, that ServiceAccount among the subjects of the reviews ClusterRoleBinding (:mod:`.reviews_binding`);
- without API keys, the endpoint's Role/RoleBinding for reading Secrets removed (with API keys they are
  children like the others, applied by :class:`.children.ChildWriter`).

And the ``Authenticated`` condition that reports the outcome.
"""

from __future__ import annotations

import logging

from .children import ChildWriteFailed, ChildWriter
from .conditions import Check
from .kube import Kube, KubeError, ServingEndpoint
from .render import Children, Owner, child_name
from .render_auth import SERVICE_ACCOUNT, EffectiveAuth, api_keys_name
from .reviews_binding import BindingProblem, ReviewsBinding

logger = logging.getLogger("modelgate_operator.identity")
AUTHENTICATION_DISABLED = "AuthenticationDisabled"


async def wire(kube: Kube, writer: ChildWriter, reviews: ReviewsBinding, owner: Owner, children: Children) -> (
        BindingProblem | None):  # fmt: skip
    """Raises :class:`ChildWriteFailed` when the ServiceAccount cannot be written (the pods could not start)."""
    try:
        await kube.apply(children.service_account)
    except KubeError as exc:
        raise ChildWriteFailed([("ServiceAccount", SERVICE_ACCOUNT, exc)]) from None
    if not children.api_keys_rbac:
        name = api_keys_name(child_name(owner.name))
        try:
            await writer.delete_owned(owner, [("RoleBinding", name), ("Role", name)])
        except KubeError as exc:
            raise ChildWriteFailed([("Role", name, exc)]) from None
    return await reviews.ensure(owner.namespace) if children.auth.uses_api_server else None


def check(auth: EffectiveAuth | None, problem: BindingProblem | None) -> Check | None:
    """The ``Authenticated`` condition (None: not known, the configuration is not valid)."""
    if auth is None:
        return None
    if auth.mode == "none":
        return Check("False", AUTHENTICATION_DISABLED, "authentication is off (spec.proxy.authentication.mode: "
                     "none, or the operator's default): anyone who can reach the endpoint may query it")  # fmt: skip
    if auth.mode == "trusted-header":
        headers = ", ".join(h for h in (auth.user_header, auth.groups_header, auth.service_principal_header) if h)
        return Check("True", "TrustedHeaders", f"callers are who the headers {headers} name: only safe behind an "
                     "authenticating proxy that sets them and strips callers' copies")  # fmt: skip
    if problem is not None:
        return Check("False", problem.reason, problem.message)
    sources = [f"Kubernetes tokens for audience {auth.audience}"]
    if auth.api_keys:
        sources.append("API keys of this namespace")
    if auth.oidc is not None:
        sources.append(f"OIDC tokens of {auth.oidc.issuer}")
    return Check("True", "BearerTokens", "every query needs a credential (" + ", ".join(sources) + ") and the "
                 "query permission on the endpoint (RBAC: bind ClusterRole modelgate-query)")  # fmt: skip


async def release(kube: Kube, reviews: ReviewsBinding, namespace: str, deleted: str) -> None:
    """After an endpoint's deletion: the namespace's ServiceAccount leaves the reviews binding when no other
    endpoint of the namespace is left (best effort: a failure is logged; the ServiceAccount stays, without rights)."""
    try:
        others = [e async for e in kube.client.list(ServingEndpoint, namespace=namespace)
                  if e.metadata is not None and e.metadata.name != deleted and not e.metadata.deletionTimestamp]  # fmt: skip
        problem = None if others else await reviews.remove(namespace)
    except Exception as exc:  # the deletion goes on; a stale subject names a ServiceAccount with no other right
        problem = BindingProblem("ReleaseFailed", type(exc).__name__)
    if problem is not None:
        logger.warning("could not remove %s/%s from the reviews binding: %s", namespace, SERVICE_ACCOUNT, problem.message)
