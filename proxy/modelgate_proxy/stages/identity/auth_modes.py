"""The authentication modes a proxy runs in, each turning a request's headers into a :class:`Principal`:

- :class:`BearerAuthentication`: the default to be. Reads ``Authorization`` and asks each authenticator in turn
  (API keys, OIDC, TokenReview); the first that vouches names the principal. No credential, a malformed one or
  one nobody vouches for is a 401 with ``WWW-Authenticate``; an authenticator that cannot check (503) stops the
  chain, so an outage is never turned into an allow or into blaming the caller.
- :class:`TrustedHeaderAuthentication`: today's mode, an explicit choice behind a mesh or proxy that already
  authenticated the caller (:mod:`modelgate_proxy.identity`).
- :class:`NoAuthentication`: an explicit opt-out for a trusted network; every caller is ``anonymous`` and
  :attr:`open` is true, so ``/readyz`` and the endpoint's status can say so.

:func:`check_query` asks the authorizer and raises :class:`QueryDenied` (403) for a denial.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ...errors import QueryDenied, Unauthenticated
from ...exchange import ANONYMOUS, Principal
from .authenticator import Authenticator, Authorizer
from .bearer import read_credential
from .headers import IdentityReader

Headers = Sequence[tuple[bytes, bytes]]


class Authentication(Protocol):
    open: bool
    """True when callers are not authenticated at all (``/readyz`` and the status say the endpoint is open)."""

    async def principal(self, headers: Headers) -> Principal: ...


class BearerAuthentication:
    open = False

    def __init__(self, authenticators: Sequence[Authenticator]) -> None:
        if not authenticators:
            raise ValueError("bearer authentication needs at least one authenticator")
        self.authenticators = tuple(authenticators)

    async def principal(self, headers: Headers) -> Principal:
        credential = read_credential(headers)
        if credential is None:
            raise Unauthenticated(
                "the request carries no credential: send 'Authorization: Bearer <token or API key>'", invalid_token=False
            )
        for authenticator in self.authenticators:
            principal = await authenticator.authenticate(credential)
            if principal is not None:
                return principal
        raise Unauthenticated("the credential is not valid here (unknown, expired, revoked or for another audience)")


class TrustedHeaderAuthentication:
    open = False

    def __init__(self, reader: IdentityReader) -> None:
        if not reader.settings.configured:
            raise ValueError("trusted-header mode needs the identity header names")
        self.reader = reader

    async def principal(self, headers: Headers) -> Principal:
        return self.reader.read(headers)


class NoAuthentication:
    open = True

    async def principal(self, headers: Headers) -> Principal:
        return ANONYMOUS


async def check_query(authorizer: Authorizer, principal: Principal, namespace: str, endpoint: str) -> None:
    if not await authorizer.may_query(principal, namespace, endpoint):
        raise QueryDenied(namespace, endpoint)
