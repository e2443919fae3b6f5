"""The proxy's authentication configuration (one pydantic model, validated at the boundary) and the builder that
turns it into the running parts: an :class:`~.chain.Authentication` mode and an :class:`~.base.Authorizer`.

``modelgate serve --auth-config FILE`` reads it (``--api-keys PATH`` and ``--no-auth`` are shorthands for two
of its forms); the operator renders it from the chart's values and the ServingEndpoint spec. Modes:

- ``bearer`` (the default): any of ``api_keys``, ``oidc`` and ``kubernetes.audience`` (TokenReview),
  tried in that order (cheapest first: a key is a dict lookup, a JWT a local signature check, a TokenReview a
  round trip);
- ``trusted-header``: the headers of an authenticating proxy in front (:mod:`modelgate_proxy.identity`);
- ``none``: nobody is authenticated; the endpoint is open and says so.

Authorization: ``rbac`` (SubjectAccessReview; needs ``kubernetes``), ``local-rbac`` (LocalSubjectAccessReview,
for a namespaced install) or ``authenticated`` (any authenticated principal may query: standalone use without a
cluster).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...exchange import Principal
from .apikey_files import ApiKeyDirectory
from .apikey_watch import ApiKeySecretWatch
from .apikeys import ApiKeyAuthenticator
from .auth_modes import Authentication, BearerAuthentication, NoAuthentication, TrustedHeaderAuthentication
from .authenticator import Authenticator, Authorizer
from .check_cache import MAX_TTL, CacheBounds
from .headers import IdentityReader, IdentitySettings
from .jwks import check_url
from .kubeapi import SA_DIR, KubeApi, KubeApiSettings
from .oidc import ASYMMETRIC_ALGORITHMS, MAX_LEEWAY, OidcAuthenticator, OidcSettings
from .sar import SubjectAccessReviewAuthorizer
from .tokenreview import TokenReviewAuthenticator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CacheConfig(_Model):
    max_entries: int = Field(10_000, ge=1, le=1_000_000)
    ttl: float = Field(10.0, ge=0, le=MAX_TTL)
    negative_ttl: float = Field(2.0, ge=0, le=MAX_TTL)

    def bounds(self) -> CacheBounds:
        return CacheBounds(self.max_entries, self.ttl, self.negative_ttl)


class KubernetesConfig(_Model):
    audience: str | None = Field(None, min_length=1, max_length=253)
    """Accept Kubernetes tokens minted for this audience (TokenReview); ``None``: the API server is used for
    authorization only."""
    server: str | None = None
    token_file: Path = SA_DIR / "token"
    ca_file: Path = SA_DIR / "ca.crt"
    timeout: float = Field(5.0, gt=0, le=60)


class OidcConfig(_Model):
    issuer: str
    audience: str = Field(min_length=1)
    username_claim: str = "sub"
    groups_claim: str | None = "groups"
    username_prefix: str = ""
    groups_prefix: str = ""
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    leeway: float = Field(30.0, ge=0, le=MAX_LEEWAY)
    ca_file: Path | None = None

    @model_validator(mode="after")
    def _check(self) -> OidcConfig:
        check_url(self.issuer, "OIDC issuer URL")
        if not self.algorithms or not set(self.algorithms) <= ASYMMETRIC_ALGORITHMS:
            raise ValueError(f"algorithms must be asymmetric ones: {', '.join(sorted(ASYMMETRIC_ALGORITHMS))}")
        return self


class ApiKeysConfig(_Model):
    path: Path
    """A Secret-manifest file or a directory of them (see :mod:`.apikey_files`)."""
    reload_interval: float = Field(1.0, ge=0.05, le=60)


class ApiKeySecretsConfig(_Model):
    namespace: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    """Watch the labelled API-key Secrets of this namespace (the endpoint's; see :mod:`.apikey_watch`)."""
    max_stale: float = Field(10.0, ge=0, le=MAX_TTL)


class TrustedHeaderConfig(_Model):
    user_header: str | None = None
    groups_header: str | None = None
    service_principal_header: str | None = None


class AuthConfig(_Model):
    mode: Literal["bearer", "trusted-header", "none"] = "bearer"
    authorize: Literal["rbac", "local-rbac", "authenticated"] = "rbac"
    api_keys: ApiKeysConfig | None = None
    api_key_secrets: ApiKeySecretsConfig | None = None
    oidc: OidcConfig | None = None
    kubernetes: KubernetesConfig | None = None
    trusted_header: TrustedHeaderConfig | None = None
    cache: CacheConfig = CacheConfig()

    @model_validator(mode="after")
    def _check(self) -> AuthConfig:
        sources = self.api_keys or self.api_key_secrets or self.oidc or (self.kubernetes and self.kubernetes.audience)
        if self.mode == "bearer" and not sources:
            raise ValueError("bearer mode needs api_keys, api_key_secrets, oidc or kubernetes.audience")
        if self.api_key_secrets is not None and self.kubernetes is None:
            raise ValueError("api_key_secrets are watched on the Kubernetes API server: configure kubernetes")
        if self.mode == "trusted-header" and not (
            self.trusted_header and (self.trusted_header.user_header or self.trusted_header.service_principal_header)
        ):
            raise ValueError("trusted-header mode needs trusted_header.user_header or service_principal_header")
        if self.mode != "none" and self.authorize in ("rbac", "local-rbac") and self.kubernetes is None:
            raise ValueError(f"authorize: {self.authorize} asks the Kubernetes API server: configure kubernetes")
        return self


class AllowAuthenticated:
    """Any authenticated principal may query (standalone use without a cluster); anonymous never."""

    async def may_query(self, principal: Principal, namespace: str, endpoint: str) -> bool:
        return principal.kind != "anonymous"


class AllowAll:
    """The explicit no-authentication mode: the endpoint is open."""

    async def may_query(self, principal: Principal, namespace: str, endpoint: str) -> bool:
        return True


@dataclass
class AuthRuntime:
    """The running parts; :meth:`start` in the app's startup, :meth:`close` in its shutdown."""

    authentication: Authentication
    authorizer: Authorizer
    _starts: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _closes: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def start(self) -> None:
        for start in self._starts:
            await start()

    async def close(self) -> None:
        for close in reversed(self._closes):
            with contextlib.suppress(Exception):
                await close()


def build(config: AuthConfig) -> AuthRuntime:
    starts: list[Callable[[], Awaitable[None]]] = []
    closes: list[Callable[[], Awaitable[None]]] = []
    bounds = config.cache.bounds()
    api: KubeApi | None = None
    if config.kubernetes is not None and config.mode != "none":
        k = config.kubernetes
        api = KubeApi(KubeApiSettings(server=k.server, token_file=k.token_file, ca_file=k.ca_file, timeout=k.timeout))
        closes.append(api.close)
    authentication: Authentication
    if config.mode == "none":
        return AuthRuntime(NoAuthentication(), AllowAll())
    if config.mode == "trusted-header":
        h = config.trusted_header or TrustedHeaderConfig()
        reader = IdentityReader(IdentitySettings(h.user_header, h.groups_header, h.service_principal_header, True))
        authentication = TrustedHeaderAuthentication(reader)
    else:
        authenticators: list[Authenticator] = []
        if config.api_keys is not None:
            directory = ApiKeyDirectory(config.api_keys.path, interval=config.api_keys.reload_interval)
            starts.append(directory.start)
            closes.append(directory.close)
            authenticators.append(ApiKeyAuthenticator(directory.store))
        if config.api_key_secrets is not None and api is not None:
            s = config.api_key_secrets
            watch = ApiKeySecretWatch(api, s.namespace, max_stale=s.max_stale)
            starts.append(watch.start)
            closes.append(watch.close)
            authenticators.append(ApiKeyAuthenticator(watch.store))
        if config.oidc is not None:
            o = config.oidc
            oidc = OidcAuthenticator(
                OidcSettings(o.issuer, o.audience, o.username_claim, o.groups_claim, o.username_prefix,
                             o.groups_prefix, o.algorithms, o.leeway, o.ca_file),
                cache=bounds,
            )
            closes.append(oidc.close)
            authenticators.append(oidc)
        if api is not None and config.kubernetes is not None and config.kubernetes.audience:
            authenticators.append(TokenReviewAuthenticator(api, config.kubernetes.audience, cache=bounds))
        authentication = BearerAuthentication(authenticators)
    authorizer: Authorizer
    if config.authorize == "authenticated":
        authorizer = AllowAuthenticated()
    elif api is None:  # the validator refuses this configuration; never fall back to an allow
        raise ValueError(f"authorize: {config.authorize} needs the kubernetes settings")
    else:
        authorizer = SubjectAccessReviewAuthorizer(api, cache=bounds, local=config.authorize == "local-rbac")
    return AuthRuntime(authentication, authorizer, starts, closes)
