"""The interfaces every authenticator and authorizer implements, and the typed errors (in
:mod:`modelgate_proxy.errors`) they raise.

- ``Authenticator.authenticate(credential)`` returns the caller's :class:`Principal`, or ``None`` when this
  authenticator does not vouch for the credential (not its format, unknown, invalid, expired); the chain then
  tries the next one and answers 401 when none vouches.
- It raises :class:`IdentityUnavailable` (503) when the source of truth (API server, issuer) cannot be asked:
  a failure to check is never an allow and never a 401 that blames the caller.
- ``Authorizer.may_query(principal, namespace, endpoint)`` says whether the principal may query the endpoint;
  it too raises :class:`IdentityUnavailable` rather than guess.

Messages never contain a credential: they are shown to callers and logged.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ...exchange import Principal
from .bearer import Credential


@runtime_checkable
class Authenticator(Protocol):
    name: str
    """Short name for logs and metrics (``tokenreview``, ``apikey``, ``oidc``)."""

    async def authenticate(self, credential: Credential) -> Principal | None: ...


@runtime_checkable
class Authorizer(Protocol):
    async def may_query(self, principal: Principal, namespace: str, endpoint: str) -> bool: ...
