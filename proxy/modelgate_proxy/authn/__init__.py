"""Caller authentication and query authorization (phase A: the parts, not yet wired into the request path).

Temporary home: when the identity stage is wired, this package moves into ``stages/identity/`` next to the
trusted-header reader. It imports only :mod:`modelgate_proxy.errors`, :mod:`modelgate_proxy.identity`
(the :class:`~modelgate_proxy.identity.Principal`), the standard library, aiohttp, PyJWT and PyYAML; never a
Kubernetes client library (the API server is called over plain HTTPS).

Modules, one job each:

- :mod:`.base` - the :class:`~.base.Authenticator` and :class:`~.base.Authorizer` interfaces.
- :mod:`.errors` - the typed errors (401 with ``WWW-Authenticate`` / 403 / 503), subclasses of the proxy's tree.
- :mod:`.credential` - reads the credential from an ``Authorization`` header.
- :mod:`.cache` - the bounded TTL cache every remote check uses.
- :mod:`.kubeapi` - the API-server client (projected token + CA, aiohttp).
- :mod:`.tokenreview` - Kubernetes tokens (TokenReview, required audience).
- :mod:`.apikeys` / :mod:`.apikey_files` / :mod:`.apikey_watch` / :mod:`.apikey_mint` - API keys: format and
  check, the directory loader with reload, the labelled-Secret watch, minting.
- :mod:`.jwks` / :mod:`.oidc` - OIDC JWTs (discovery, JWKS cache with rotation, verification).
- :mod:`.sar` - query permission as a SubjectAccessReview.
- :mod:`.chain` - the authenticator chain, trusted-header mode and the explicit no-authentication mode.
- :mod:`.settings` - the configuration model and :func:`~.settings.build`, which makes the running parts.

Design, bounds and what remains to be wired: ``docs/authentication.md``.
"""
