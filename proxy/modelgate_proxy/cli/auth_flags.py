"""``modelgate serve``'s authentication flags, and the one choice they make. Authentication is on by default:
``serve`` refuses to start unless exactly one of these is given (docs/authentication.md):

- ``--auth-config FILE``: an :class:`AuthConfig` YAML (``mode: bearer``, ``trusted-header`` or ``none``);
- ``--api-keys PATH``: bearer mode with the API keys of that file or directory, any authenticated key may query;
- the identity-header flags (``--identity-header`` etc.): trusted headers of an authenticating proxy in front;
- ``--no-auth``: the explicit opt-out; every caller is anonymous, every query allowed (the endpoints are open).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..endpoints.services import NO_AUTH, TRUSTED_HEADERS, AuthChoice
from ..stages.identity.auth_config import ApiKeysConfig, AuthConfig
from ..stages.identity.headers import IdentitySettings
from .manifests import ConfigError

NO_CHOICE = ("refusing to start without authentication: give --auth-config FILE, --api-keys PATH (or the "
             "--identity-header flags behind an authenticating proxy), or --no-auth to serve every caller "
             "unauthenticated")

_IDENTITY_FLAGS = (("identity_header", "--identity-header"), ("service_principal_header", "--service-principal-header"),
                   ("groups_header", "--groups-header"), ("require_identity", "--require-identity"))


def add_auth_arguments(gateway: Any) -> None:
    """Register the choice's flags on ``serve``'s AI Gateway argument group."""
    gateway.add_argument("--auth-config", default=None, metavar="FILE",
                         help="YAML authentication settings (API keys, OIDC, Kubernetes tokens, RBAC, or mode: none; "
                              "docs/authentication.md): every query is authenticated and authorized")
    gateway.add_argument("--api-keys", default=None, metavar="PATH",
                         help="shorthand for bearer mode with the API keys of this Secret-manifest file or directory "
                              "(reloaded every second; `modelgate api-key create` mints them); any valid key may query")
    gateway.add_argument("--no-auth", action="store_true",
                         help="serve without authentication: every caller is anonymous and every query is allowed "
                              "(an explicit opt-out for a trusted network; /readyz says open)")
    gateway.add_argument("--identity-header", default=None, metavar="HEADER",
                         help="trusted-header mode: the request header with the user an authenticating proxy in "
                              "front set (e.g. X-Forwarded-Email)")
    gateway.add_argument("--groups-header", default=None, metavar="HEADER",
                         help="request header with the user's groups, comma-separated (e.g. X-Forwarded-Groups)")
    gateway.add_argument("--service-principal-header", default=None, metavar="HEADER",
                         help="request header with a service principal's id; wins over --identity-header")
    gateway.add_argument("--require-identity", action="store_true",
                         help="answer 401 to requests without an identity header")


def auth_arguments(args: argparse.Namespace) -> dict[str, Any]:
    return {"identity_header": args.identity_header, "groups_header": args.groups_header,
            "service_principal_header": args.service_principal_header, "require_identity": args.require_identity,
            "auth_config": args.auth_config, "api_keys": args.api_keys, "no_auth": args.no_auth}


def auth_choice(settings: dict[str, Any]) -> tuple[AuthChoice, IdentitySettings]:
    """The one authentication the flags choose (and the trusted-header settings, empty unless chosen); raises
    :class:`ConfigError` when none is given or two are."""
    identity = IdentitySettings(
        user_header=settings.get("identity_header") or None,
        groups_header=settings.get("groups_header") or None,
        service_principal_header=settings.get("service_principal_header") or None,
        required=bool(settings.get("require_identity")),
    )
    given: list[str] = []
    if settings.get("auth_config"):
        given.append("--auth-config")
    if settings.get("api_keys"):
        given.append("--api-keys")
    identity_flags = [flag for key, flag in _IDENTITY_FLAGS if settings.get(key)]
    if identity_flags:
        given.append(identity_flags[0])
    if settings.get("no_auth"):
        given.append("--no-auth")
    if not given:
        raise ConfigError(NO_CHOICE)
    if len(given) > 1:
        raise ConfigError(f"{given[0]} and {given[1]} exclude each other: choose one authentication (trusted-header "
                          "mode is also an --auth-config mode)")
    if identity_flags:
        if identity.required and not identity.configured:
            raise ConfigError("--require-identity needs --identity-header or --service-principal-header")
        if not identity.configured:
            raise ConfigError("--groups-header needs --identity-header or --service-principal-header")
        return TRUSTED_HEADERS, identity
    if settings.get("no_auth"):
        return NO_AUTH, IdentitySettings()
    if settings.get("api_keys"):
        path = Path(settings["api_keys"])
        if not path.exists():
            raise ConfigError(f"--api-keys {path} does not exist")
        return AuthConfig(mode="bearer", authorize="authenticated", api_keys=ApiKeysConfig(path=path)), IdentitySettings()
    return load_auth_config(str(settings["auth_config"])), IdentitySettings()


def load_auth_config(path: str) -> AuthConfig:
    """The ``--auth-config`` file, validated; :class:`ConfigError` naming the field otherwise."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
        config = AuthConfig.model_validate(raw if raw is not None else {})
    except OSError as e:
        raise ConfigError(f"--auth-config {path}: {e.strerror}") from None
    except yaml.YAMLError:
        raise ConfigError(f"--auth-config {path}: not YAML") from None
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top)'}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"--auth-config {path}: {problems}") from None
    if config.api_keys is not None and not config.api_keys.path.exists():
        raise ConfigError(f"--auth-config {path}: api_keys.path {config.api_keys.path} does not exist")
    return config


def describe(mode: str, open_: bool) -> str:
    """The start-up log's words for the chosen authentication."""
    if open_:
        return ("authentication: none, the endpoints are OPEN: every caller is anonymous and every query is allowed "
                "(--no-auth or mode: none)")
    return f"authentication: {mode}"
