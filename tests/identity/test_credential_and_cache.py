"""The Authorization header parser, the bounded TTL cache, the chain's 401s and the no-auth mode."""

from __future__ import annotations

import asyncio
import base64

import pytest

from modelgate_proxy.errors import IdentityUnavailable, Unauthenticated
from modelgate_proxy.exchange import Principal
from modelgate_proxy.stages.identity.auth_modes import (
    BearerAuthentication,
    NoAuthentication,
    TrustedHeaderAuthentication,
)
from modelgate_proxy.stages.identity.bearer import MAX_CREDENTIAL, Credential, parse_authorization, read_credential
from modelgate_proxy.stages.identity.check_cache import CacheBounds, TtlCache
from modelgate_proxy.stages.identity.headers import IdentityReader, IdentitySettings


def test_bearer_and_databricks_basic_forms() -> None:
    assert parse_authorization(b"Bearer abc.def-_~+/=").secret == "abc.def-_~+/="
    assert parse_authorization(b"bearer   tok  ").secret == "tok"
    basic = base64.b64encode(b"token:dapi123").decode()
    assert parse_authorization(f"Basic {basic}".encode()).secret == "dapi123"


@pytest.mark.parametrize("value", [
    b"", b"Bearer", b"Bearer ", b"Token abc", b"Basic !!!", b"Basic " + base64.b64encode(b"alice:pw"),
    b"Bearer sek ret", b"Bearer \xff", b"Bearer " + b"a" * (MAX_CREDENTIAL + 1), b"Bearer <script>",
])
def test_malformed_headers_are_401_with_a_challenge(value: bytes) -> None:
    with pytest.raises(Unauthenticated) as info:
        parse_authorization(value)
    assert info.value.status == 401
    assert info.value.headers["WWW-Authenticate"].startswith('Bearer realm="modelgate"')
    assert "sek" not in info.value.message
    assert "alice" not in info.value.message


def test_two_authorization_headers_are_refused_and_none_is_none() -> None:
    assert read_credential([(b"x-other", b"1")]) is None
    with pytest.raises(Unauthenticated):
        read_credential([(b"authorization", b"Bearer a"), (b"authorization", b"Bearer b")])


def test_credential_never_shows_its_secret() -> None:
    c = Credential("s3cret-value")
    assert "s3cret" not in repr(c)
    assert "s3cret" not in str(c)
    assert "s3cret" not in f"{c}"
    assert len(c.digest) == 32
    assert c.digest != b"s3cret-value"


def test_cache_ttl_negative_ttl_and_size_bound() -> None:
    now = [0.0]
    cache: TtlCache[str, bool] = TtlCache(CacheBounds(max_entries=3, ttl=10, negative_ttl=2), clock=lambda: now[0])
    cache.put("yes", True, positive=True)
    cache.put("no", False, positive=False)
    now[0] = 1.9
    assert cache.get("yes") == (True, True)
    assert cache.get("no") == (True, False)
    now[0] = 2.0
    assert cache.get("no") == (False, None)
    assert cache.get("yes") == (True, True)
    now[0] = 10.0
    assert cache.get("yes") == (False, None)
    for i in range(5):
        cache.put(f"k{i}", True, positive=True)
    assert len(cache) == 3
    assert cache.get("k0") == (False, None)
    assert cache.get("k4") == (True, True)
    cache.put("short", True, positive=True, max_age=0.5)
    now[0] = 10.5
    assert cache.get("short") == (False, None)


def test_cache_bounds_are_validated() -> None:
    with pytest.raises(ValueError):
        CacheBounds(ttl=301)
    with pytest.raises(ValueError):
        CacheBounds(max_entries=0)


def test_concurrent_loads_of_one_key_share_one_call_and_errors_are_not_cached() -> None:
    calls = 0

    async def scenario() -> None:
        nonlocal calls
        cache: TtlCache[str, int] = TtlCache(CacheBounds())

        async def load() -> tuple[int, bool, float | None]:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.05)
            return 7, True, None

        assert await asyncio.gather(*(cache.get_or_load("k", load) for _ in range(20))) == [7] * 20
        assert calls == 1

        async def fail() -> tuple[int, bool, float | None]:
            nonlocal calls
            calls += 1
            raise IdentityUnavailable("down")

        for _ in range(2):
            with pytest.raises(IdentityUnavailable):
                await cache.get_or_load("e", fail)
        assert calls == 3

    asyncio.run(scenario())


class _Fixed:
    name = "fixed"

    def __init__(self, secret: str, principal: Principal) -> None:
        self.secret, self.p = secret, principal

    async def authenticate(self, credential: Credential) -> Principal | None:
        return self.p if credential.secret == self.secret else None


class _Down:
    name = "down"

    async def authenticate(self, credential: Credential) -> Principal | None:
        raise IdentityUnavailable("the Kubernetes API server could not be reached for the TokenReview")


def test_chain_first_vouching_authenticator_wins_and_outage_is_503() -> None:
    alice, bob = Principal("user", "alice"), Principal("user", "bob")
    chain = BearerAuthentication([_Fixed("a", alice), _Fixed("b", bob), _Down()])

    async def scenario() -> None:
        assert await chain.principal([(b"authorization", b"Bearer a")]) == alice
        assert await chain.principal([(b"authorization", b"Bearer b")]) == bob
        with pytest.raises(IdentityUnavailable) as down:
            await chain.principal([(b"authorization", b"Bearer zzz")])
        assert down.value.status == 503
        with pytest.raises(Unauthenticated) as none:
            await chain.principal([])
        assert none.value.headers["WWW-Authenticate"] == 'Bearer realm="modelgate"'
        with pytest.raises(Unauthenticated) as wrong:
            await BearerAuthentication([_Fixed("a", alice)]).principal([(b"authorization", b"Bearer wrong")])
        assert "wrong" not in wrong.value.message
        assert 'error="invalid_token"' in wrong.value.headers["WWW-Authenticate"]

    asyncio.run(scenario())


def test_explicit_modes() -> None:
    assert NoAuthentication.open
    assert not BearerAuthentication.open
    with pytest.raises(ValueError):
        TrustedHeaderAuthentication(IdentityReader(IdentitySettings()))
    mode = TrustedHeaderAuthentication(IdentityReader(IdentitySettings(user_header="X-Forwarded-Email")))
    got = asyncio.run(mode.principal([(b"x-forwarded-email", b"carol@example.com")]))
    assert got == Principal("user", "carol@example.com")
    assert asyncio.run(NoAuthentication().principal([])).kind == "anonymous"


def test_a_cancelled_loader_does_not_fail_the_requests_waiting_for_it() -> None:
    calls = 0

    async def scenario() -> int:
        nonlocal calls
        cache: TtlCache[str, int] = TtlCache(CacheBounds())

        async def load() -> tuple[int, bool, float | None]:
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.1)
            return calls, True, None

        first = asyncio.create_task(cache.get_or_load("k", load))
        await asyncio.sleep(0.01)
        waiter = asyncio.create_task(cache.get_or_load("k", load))
        await asyncio.sleep(0.01)
        first.cancel()  # the first caller went away mid-review
        with pytest.raises(asyncio.CancelledError):
            await first
        return await waiter

    assert asyncio.run(scenario()) == 2
    assert calls == 2
