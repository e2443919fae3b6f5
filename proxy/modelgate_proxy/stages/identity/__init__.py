"""Caller identity: who is calling, and whether they may query.

The trusted-header mode: the headers an authenticating proxy sets (:mod:`.headers`), and the stage that names
the caller on the exchange (:mod:`.caller`).

The authenticating stage (:mod:`.authenticate`), on by default in ``modelgate serve`` (docs/authentication.md),
and its parts. These modules import only :mod:`modelgate_proxy.errors`, :mod:`modelgate_proxy.exchange` (the
:class:`~modelgate_proxy.exchange.Principal`), the standard library, aiohttp, PyJWT, PyYAML and pydantic. They
never import a Kubernetes client library: the API server is called over plain HTTPS.

- :mod:`.authenticator`: the :class:`~.authenticator.Authenticator` and :class:`~.authenticator.Authorizer`
  interfaces. Their errors are in the one tree: ``Unauthenticated`` (401 with ``WWW-Authenticate``),
  ``QueryDenied`` (403) and ``IdentityUnavailable`` (503).
- :mod:`.bearer`: reads the credential from an ``Authorization`` header.
- :mod:`.check_cache`: the bounded TTL cache that every remote check uses.
- :mod:`.bounded_read`: reads an HTTP answer whole, up to a bound.
- :mod:`.kubeapi`: the API-server client (projected token + CA, aiohttp).
- :mod:`.tokenreview`: Kubernetes tokens (TokenReview, with a required audience).
- :mod:`.apikeys`, :mod:`.apikey_files`, :mod:`.apikey_watch` and :mod:`.apikey_mint`: API keys. Respectively:
  the format and the check; the directory loader with reload; the labelled-Secret watch; minting.
- :mod:`.jwks` and :mod:`.oidc`: OIDC JWTs (discovery, the JWKS cache with rotation, verification).
- :mod:`.sar`: query permission as a SubjectAccessReview.
- :mod:`.auth_modes`: the modes. These are the bearer chain, the trusted-header mode and the explicit
  no-authentication mode.
- :mod:`.auth_config`: the configuration model, and :func:`~.auth_config.build`, which makes the running parts.
"""
