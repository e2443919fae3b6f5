"""Kubernetes tokens: a TokenReview against the API server, with an audience the proxy requires.

The review asks with ``spec.audiences: [<audience>]``: the API server accepts a ServiceAccount token only if one of
its ``aud`` values is that audience (a token minted for another audience, or the API server's own, is refused), and
answers the audiences it checked in ``status.audiences``, which must contain ours (an authenticator that does not
check audiences answers none, and is refused here too). The reviewed user name and groups are the principal;
a ServiceAccount (``system:serviceaccount:<namespace>:<name>``) is a ``service_principal``.

Results are cached by the token's SHA-256 (:mod:`.cache`): positive ones for ``ttl`` (never past the token's
expiry as the review reports it), refusals for ``negative_ttl``.
"""

from __future__ import annotations

from typing import Any

from ...errors import IdentityUnavailable
from ...exchange import Principal
from .bearer import Credential
from .check_cache import CacheBounds, TtlCache
from .headers import MAX_GROUPS, MAX_NAME
from .kubeapi import KubeApi

PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
SA_PREFIX = "system:serviceaccount:"


class TokenReviewAuthenticator:
    name = "tokenreview"

    def __init__(self, api: KubeApi, audience: str, *, cache: CacheBounds | None = None) -> None:
        if not audience:
            raise ValueError("a TokenReview authenticator needs the audience the proxy requires")
        self.api = api
        self.audience = audience
        self.cache: TtlCache[bytes, Principal | None] = TtlCache(cache or CacheBounds())

    async def authenticate(self, credential: Credential) -> Principal | None:
        if not credential.looks_like_jwt:  # Kubernetes tokens are JWTs; do not send anything else to the server
            return None

        async def review() -> tuple[Principal | None, bool, float | None]:
            principal = principal_from_review(await self.api.create(PATH, self._body(credential)), self.audience)
            return principal, principal is not None, None

        return await self.cache.get_or_load(credential.digest, review)

    def _body(self, credential: Credential) -> dict[str, Any]:
        return {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": credential.secret, "audiences": [self.audience]},
        }


def principal_from_review(review: dict[str, Any], audience: str) -> Principal | None:
    """The principal a TokenReview answer vouches for, ``None`` if it does not (or not for ``audience``)."""
    status = review.get("status")
    if not isinstance(status, dict):
        raise IdentityUnavailable("the Kubernetes API server's TokenReview answer has no status")
    if status.get("authenticated") is not True:
        return None
    audiences = status.get("audiences")
    if not isinstance(audiences, list) or audience not in audiences:
        return None
    user = status.get("user")
    if not isinstance(user, dict):
        return None
    name = user.get("username")
    if not isinstance(name, str) or not name or len(name) > MAX_NAME:
        return None
    raw_groups = user.get("groups")
    groups = tuple(dict.fromkeys(
        g for g in (raw_groups if isinstance(raw_groups, list) else []) if isinstance(g, str) and 0 < len(g) <= MAX_NAME
    ))[:MAX_GROUPS]
    if name.startswith(SA_PREFIX):
        return Principal("service_principal", name, groups)
    return Principal("user", name, groups)
