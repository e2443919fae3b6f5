"""OIDC JWTs against a stand-in issuer on loopback: discovery, JWKS caching and rotation, and the refusals
(forged signature, ``alg: none``, HS256 signed with the public key, expired, wrong audience, wrong issuer)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from modelgate_proxy.errors import IdentityUnavailable
from modelgate_proxy.exchange import Principal
from modelgate_proxy.stages.identity.bearer import Credential
from modelgate_proxy.stages.identity.check_cache import CacheBounds
from modelgate_proxy.stages.identity.jwks import Jwks, check_url
from modelgate_proxy.stages.identity.oidc import OidcAuthenticator, OidcSettings
from tests.standins.oidc_issuer import OidcIssuerStandIn, new_key
from tests.standins.server import serve_app


@pytest.fixture
def issuer() -> Iterator[OidcIssuerStandIn]:
    stand_in = OidcIssuerStandIn()
    with serve_app(stand_in.app) as url:
        stand_in.url = url
        yield stand_in


def _auth(issuer: OidcIssuerStandIn, *, min_refetch: float = 0.0, cache: CacheBounds | None = None,
          **settings: object) -> OidcAuthenticator:
    s = OidcSettings(issuer=issuer.url, audience="modelgate", **settings)  # type: ignore[arg-type]
    return OidcAuthenticator(s, jwks=Jwks(issuer.url, min_refetch=min_refetch), cache=cache or CacheBounds(ttl=0))


def _run(auth: OidcAuthenticator, *tokens: str) -> list[Principal | None]:
    async def scenario() -> list[Principal | None]:
        try:
            return [await auth.authenticate(Credential(t)) for t in tokens]
        finally:
            await auth.close()

    return asyncio.run(scenario())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_token_from_the_issuer_names_user_and_groups(issuer: OidcIssuerStandIn) -> None:
    token = issuer.token()
    es_key = issuer.rotate(keep_old=True, alg="ES256")
    [rs, es] = _run(_auth(issuer), token, issuer.token(key=es_key))
    assert rs == Principal("user", "alice@example.com", ("data-scientists",))
    assert es == rs


def test_configurable_claims_and_prefixes(issuer: OidcIssuerStandIn) -> None:
    token = issuer.token(email="bob@example.com", roles="admins", groups=None)
    [p] = _run(_auth(issuer, username_claim="email", groups_claim="roles", username_prefix="oidc:",
                     groups_prefix="oidc:"), token)
    assert p == Principal("user", "oidc:bob@example.com", ("oidc:admins",))
    [reserved] = _run(_auth(issuer), issuer.token(sub="system:admin"))
    assert reserved is None
    [filtered] = _run(_auth(issuer), issuer.token(groups=["system:masters", "ok"]))
    assert filtered is not None
    assert filtered.groups == ("ok",)


def test_refusals(issuer: OidcIssuerStandIn) -> None:
    now = int(time.time())
    good = issuer.token()
    header_b64, payload_b64, _ = good.split(".")
    forged = issuer.token(key=new_key())  # same kid header, a key the issuer never published
    forged_same_kid = jwt.encode(jwt.decode(good, options={"verify_signature": False}), new_key().private,
                                 algorithm="RS256", headers={"kid": issuer.current.kid})
    tampered = f"{header_b64}.{_b64(json.dumps({**jwt.decode(good, options={'verify_signature': False}), 'sub': 'mallory'}).encode())}.{good.split('.')[2]}"
    alg_none = f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT', 'kid': issuer.current.kid}).encode())}.{payload_b64}."
    public_pem = issuer.current.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    hs_header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.current.kid}).encode())
    hs_sig = _b64(hmac.new(public_pem, f"{hs_header}.{payload_b64}".encode(), hashlib.sha256).digest())
    hs256_with_public_key = f"{hs_header}.{payload_b64}.{hs_sig}"
    cases = {
        "forged": forged,
        "forged with the issuer's kid": forged_same_kid,
        "tampered claims": tampered,
        "alg none": alg_none,
        "HS256 with the public key": hs256_with_public_key,
        "expired": issuer.token(iat=now - 3600, exp=now - 600),
        "not yet valid": issuer.token(nbf=now + 600),
        "wrong audience": issuer.token(aud="someone-else"),
        "no exp": jwt.encode({"iss": issuer.url, "aud": "modelgate", "sub": "a"}, issuer.current.private,
                             algorithm="RS256", headers={"kid": issuer.current.kid}),
        "no subject": issuer.token(sub=None),
        "not a JWT": "a.b.c",
    }
    got = dict(zip(cases, _run(_auth(issuer), good, *cases.values())[1:], strict=True))
    assert _run(_auth(issuer), good) != [None]
    assert {k: v for k, v in got.items() if v is not None} == {}


def test_clock_skew_leeway_is_bounded_and_applied(issuer: OidcIssuerStandIn) -> None:
    now = int(time.time())
    just_expired = issuer.token(iat=now - 600, exp=now - 10)
    assert _run(_auth(issuer, leeway=30), just_expired) != [None]
    assert _run(_auth(issuer, leeway=0), just_expired) == [None]
    with pytest.raises(ValueError):
        OidcSettings(issuer=issuer.url, audience="x", leeway=301)
    with pytest.raises(ValueError):
        OidcSettings(issuer=issuer.url, audience="x", algorithms=("HS256",))
    with pytest.raises(ValueError):
        OidcSettings(issuer=issuer.url, audience="x", algorithms=("none",))


def test_another_issuers_token_is_left_to_the_next_authenticator(issuer: OidcIssuerStandIn) -> None:
    other = issuer.token(iss="https://other.example.com")
    auth = _auth(issuer)
    assert _run(auth, other) == [None]
    assert issuer.discovery_requests == 0  # not even a discovery for a token that is not this issuer's


def test_key_rotation_is_picked_up_and_unknown_kids_refetch_rate_limited(issuer: OidcIssuerStandIn) -> None:
    async def scenario() -> None:
        auth = _auth(issuer, min_refetch=0.5)
        try:
            assert await auth.authenticate(Credential(issuer.token())) is not None
            assert issuer.jwks_requests == 1
            new = issuer.rotate()  # the old key is gone from the JWKS, a new kid signs
            rotated = issuer.token(key=new)
            await asyncio.sleep(0.5)
            assert await auth.authenticate(Credential(rotated)) is not None
            assert issuer.jwks_requests == 2
            # made-up kids: at most one refetch per min_refetch, however many tokens arrive
            for _ in range(50):
                assert await auth.authenticate(Credential(issuer.token(headers={"kid": "nope"}))) is None
            assert issuer.jwks_requests <= 3
            assert auth.jwks.fetches == issuer.jwks_requests
        finally:
            await auth.close()

    asyncio.run(scenario())


def test_an_unreachable_issuer_is_503_not_an_allow_and_known_keys_survive_an_outage(issuer: OidcIssuerStandIn) -> None:
    async def scenario() -> None:
        cold = _auth(issuer)
        warm = OidcAuthenticator(OidcSettings(issuer=issuer.url, audience="modelgate"),
                                 jwks=Jwks(issuer.url, min_refetch=0, max_age=0.0), cache=CacheBounds(ttl=0))
        token = issuer.token()
        try:
            assert await warm.authenticate(Credential(token)) is not None
            issuer.fail = True
            with pytest.raises(IdentityUnavailable) as info:
                await cold.authenticate(Credential(token))
            assert info.value.status == 503
            assert token not in info.value.message
            assert await warm.authenticate(Credential(token)) is not None  # stale keys still verify
        finally:
            await cold.close()
            await warm.close()

    asyncio.run(scenario())


def test_verified_tokens_are_cached_by_digest_and_never_past_exp(issuer: OidcIssuerStandIn) -> None:
    async def scenario() -> None:
        auth = _auth(issuer, cache=CacheBounds(ttl=60, negative_ttl=1), leeway=0)
        try:
            token = issuer.token(ttl=1)
            cred = Credential(token)
            assert await auth.authenticate(cred) is not None
            assert len(auth.cache) == 1
            assert auth.cache.get(cred.digest)[0]
            assert token not in repr(auth.cache._entries)
            await asyncio.sleep(1.2)
            assert auth.cache.get(cred.digest) == (False, None)
            assert await auth.authenticate(cred) is None  # expired now
        finally:
            await auth.close()

    asyncio.run(scenario())


def test_issuer_urls_must_be_https_except_loopback() -> None:
    assert check_url("https://login.example.com/tenant", "x")
    assert check_url("http://127.0.0.1:8080", "x")
    for bad in ("http://login.example.com", "ftp://x", "file:///etc/passwd", "https://"):
        with pytest.raises(ValueError):
            check_url(bad, "x")


def test_a_symmetric_key_in_the_jwks_is_never_used(issuer: OidcIssuerStandIn) -> None:
    secret = b"shared-secret-published-by-mistake"
    issuer.extra_jwks = [{"kty": "oct", "kid": "hmac", "k": _b64(secret), "alg": "HS256"}]
    hs = jwt.encode({"iss": issuer.url, "aud": "modelgate", "sub": "mallory", "exp": int(time.time()) + 60},
                    secret, algorithm="HS256", headers={"kid": "hmac"})
    # even with HS256 allowed by PyJWT's own rules, the key is not in the set and HS256 is not configurable
    got = _run(_auth(issuer), issuer.token(), hs)
    assert got[0] is not None
    assert got[1] is None


def test_a_token_without_kid_needs_an_issuer_with_one_key(issuer: OidcIssuerStandIn) -> None:
    claims = jwt.decode(issuer.token(), options={"verify_signature": False})
    no_kid = jwt.encode(claims, issuer.current.private, algorithm="RS256")
    assert _run(_auth(issuer), no_kid) != [None]
    issuer.rotate(keep_old=True)
    assert _run(_auth(issuer), no_kid) == [None]  # ambiguous: which key?


def test_an_rs256_header_on_an_ec_key_is_refused(issuer: OidcIssuerStandIn) -> None:
    ec_key = issuer.rotate(keep_old=True, alg="ES256")
    claims = jwt.decode(issuer.token(), options={"verify_signature": False})
    mismatched = jwt.encode(claims, issuer.keys[0].private, algorithm="RS256", headers={"kid": ec_key.kid})
    assert _run(_auth(issuer), mismatched) == [None]
