"""How callers of an endpoint's proxy are authenticated (Kubernetes-only, not part of the Databricks API).

``spec.proxy.authentication`` overrides, field by field, the operator's default (the chart's
``proxy.authentication`` values). Unset everywhere, an endpoint is ``bearer``: every query needs a credential
(an API key from a labelled Secret of the endpoint's namespace, an OIDC token, or a Kubernetes token minted for
the audience) and the ``query`` permission on the endpoint (a SubjectAccessReview). See docs/authentication.md.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .spec_model import SpecModel

AuthenticationMode = Literal["bearer", "trusted-header", "none"]
HEADER_PATTERN = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
Header = Annotated[str, Field(min_length=1, max_length=128, pattern=HEADER_PATTERN)]


class OidcProvider(SpecModel):
    """An OIDC issuer whose JWTs are accepted (the corporate-SSO path)."""

    issuer: Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https://|^http://(127\.|localhost[:/]|\[::1\])")]
    """The issuer URL (``https://``; ``http://`` only on loopback), as in the tokens' ``iss``."""
    audience: Annotated[str, Field(min_length=1, max_length=253)]
    """The ``aud`` the tokens must carry."""
    username_claim: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    """The claim naming the user (default ``sub``), e.g. ``email``."""
    groups_claim: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    """The claim listing the user's groups (default ``groups``)."""
    username_prefix: Annotated[str, Field(max_length=128)] | None = None
    """Prepended to the user name, as kube-apiserver's ``--oidc-username-prefix``."""
    groups_prefix: Annotated[str, Field(max_length=128)] | None = None
    """Prepended to every group."""


class TrustedHeaders(SpecModel):
    """The headers an authenticating proxy in front (a mesh, an ingress) sets; only for ``trusted-header``."""

    user_header: Header | None = None
    """The header with the authenticated user, e.g. ``X-Forwarded-Email``."""
    groups_header: Header | None = None
    """The header with the user's groups, comma-separated."""
    service_principal_header: Header | None = None
    """The header with a service principal's id (wins over the user header)."""


class AuthenticationSettings(SpecModel):
    """Who may call the endpoint. Every unset field takes the operator's default (chart values)."""

    mode: AuthenticationMode | None = None
    """``bearer`` (the default): a credential and the ``query`` permission on every query; ``trusted-header``:
    trust the headers of an authenticating proxy in front; ``none``: the endpoint is open to anyone who can reach
    it (its status says so)."""
    audience: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    """The audience a Kubernetes token must be minted for (``kubectl create token SA --audience ...``), e.g.
    ``modelgate.io/proxy``."""
    api_keys: bool | None = None
    """Accept the API keys of the labelled Secrets of the endpoint's namespace (the proxy then may read that
    namespace's Secrets: docs/authentication.md)."""
    oidc: OidcProvider | None = None
    """Accept JWTs of this OIDC issuer (replaces the operator's default issuer)."""
    trusted_header: TrustedHeaders | None = None
    """The headers for ``trusted-header`` mode."""
