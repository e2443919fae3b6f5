"""Who is calling: a :class:`~modelgate_proxy.exchange.Principal` read from headers that an authenticating proxy in front sets.

Kubernetes has no Databricks personal access tokens. The proxy does not authenticate callers itself; it trusts
headers that an authenticating reverse proxy (oauth2-proxy, Envoy's ext_authz / jwt_authn, Istio, an ingress
controller with external auth) sets after it authenticated the caller and stripped any copy the caller sent.
Trusting a header is safe only behind such a proxy, so nothing is trusted unless configured
(``--identity-header`` and friends); without configuration every caller is ``anonymous``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ...errors import AuthenticationFailed, BadRequest
from ...exchange import ANONYMOUS, Principal

MAX_NAME = 255
"""Longest principal or group name (as ``rateLimits[].principal``)."""
MAX_GROUPS = 100
"""Groups read from the groups header; more are ignored (a bound on per-request work)."""


@dataclass(frozen=True, slots=True)
class IdentitySettings:
    """Which request headers carry the caller's identity (names as configured; matched case-insensitively)."""

    user_header: str | None = None
    """The authenticated user's name or e-mail, e.g. ``X-Forwarded-Email`` or ``X-Forwarded-User``."""
    groups_header: str | None = None
    """The user's groups, comma-separated, e.g. ``X-Forwarded-Groups``."""
    service_principal_header: str | None = None
    """A machine caller's id (e.g. a client id set by the authenticating proxy for client-credential tokens);
    when present it wins over the user header."""
    required: bool = False
    """Refuse (401) a request that carries none of the identity headers."""

    @property
    def configured(self) -> bool:
        return self.user_header is not None or self.service_principal_header is not None


class IdentityReader:
    """Reads a :class:`Principal` from ASGI headers, per :class:`IdentitySettings`."""

    __slots__ = ("_groups", "_sp", "_user", "settings")

    def __init__(self, settings: IdentitySettings) -> None:
        self.settings = settings
        self._user = _header_key(settings.user_header)
        self._groups = _header_key(settings.groups_header)
        self._sp = _header_key(settings.service_principal_header)

    def read(self, headers: Sequence[tuple[bytes, bytes]]) -> Principal:
        user = groups = sp = None
        for key, value in headers:
            if key == self._user:
                user = value
            elif key == self._groups:
                groups = value
            elif key == self._sp:
                sp = value
        group_names = _groups(groups) if groups is not None else ()
        if sp is not None and sp.strip():
            return Principal("service_principal", _name(sp, self.settings.service_principal_header), group_names)
        if user is not None and user.strip():
            return Principal("user", _name(user, self.settings.user_header), group_names)
        if self.settings.required:
            names = " or ".join(h for h in (self.settings.user_header, self.settings.service_principal_header) if h)
            raise AuthenticationFailed(
                f"the request carries no caller identity ({names}); send it through the authenticating proxy"
            )
        return ANONYMOUS


def _header_key(name: str | None) -> bytes | None:
    return name.strip().lower().encode("latin-1") if name else None


def _name(raw: bytes, header: str | None) -> str:
    text = raw.decode("utf-8", errors="replace").strip()
    if len(text) > MAX_NAME or not text.isprintable():
        raise BadRequest(f"the identity header {header} is not a valid name (printable, at most {MAX_NAME} characters)")
    return text


def _groups(raw: bytes) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for part in raw.decode("utf-8", errors="replace").split(",", MAX_GROUPS * 2):
        name = part.strip()
        if name and len(name) <= MAX_NAME and name.isprintable():
            out[name] = None
            if len(out) == MAX_GROUPS:
                break
    return tuple(out)
