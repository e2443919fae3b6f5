"""Redis-backed rate limits with real processes: ``modelgate serve`` subprocesses sharing one real redis-server.
Two proxies admit at most the configured calls per window in total; with Redis stopped each endpoint follows
its policy (closed: 503; open: admitted, counted as unchecked), ``/readyz`` and ``/metrics`` say so; restarted,
counting resumes by itself. The password comes from a file, as from a mounted Secret."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import yaml

from tests.standins.openai_api import OpenAIStandIn
from tests.standins.server import free_port

from .conftest import FAKE_KEY
from .harness import NO_AUTH, endpoint, openai_entity, write_secret
from .redis_server import RedisServer
from .serve_process import stop, wait_until_answering

BODY = {"messages": [{"role": "user", "content": "hi"}]}
PASSWORD = "redis-SENTINEL-pw-7c1d"


@contextmanager
def serve(tmp_path: Path, manifests: list[dict[str, object]], *extra: str,
          auth: Sequence[str] = NO_AUTH) -> Iterator[str]:
    """A ``modelgate serve`` process on a free port; yields its URL."""
    config = tmp_path / f"endpoints-{time.time_ns()}.yaml"
    config.write_text(yaml.safe_dump_all(manifests))
    secrets = tmp_path / "secrets"
    if not (secrets / "openai").exists():
        write_secret(secrets, "openai", "api-key", FAKE_KEY)
    port = free_port()
    log = (tmp_path / f"proxy-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "modelgate_proxy", "serve", "-f", str(config), "--secrets-dir", str(secrets),
         "--port", str(port), "--log-level", "warning", *auth, *extra], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(process, url, "/healthz", log=tmp_path / f"proxy-{port}.log")
        yield url
    finally:
        stop(process)
        log.close()
    assert FAKE_KEY not in (tmp_path / f"proxy-{port}.log").read_text()
    assert PASSWORD not in (tmp_path / f"proxy-{port}.log").read_text()


def metric(url: str, line_start: str) -> float | None:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.split()[-1])
    return None


async def _spread(urls: list[str], name: str, n: int, headers: dict[str, str] | None = None) -> list[int]:
    async with httpx.AsyncClient(timeout=30) as client:
        calls = [client.post(f"{urls[i % len(urls)]}/serving-endpoints/{name}/invocations", json=BODY,
                             headers=headers or {}) for i in range(n)]
        return [r.status_code for r in await asyncio.gather(*calls)]


def test_two_proxies_sharing_redis_admit_the_limit_in_total(tmp_path: Path, redis_url: str,
                                                            openai_standin: tuple[OpenAIStandIn, str]) -> None:
    standin, url = openai_standin
    identity = ["--identity-header", "X-Forwarded-Email", "--groups-header", "X-Forwarded-Groups"]
    manifest = endpoint("chat", [openai_entity(url)], ai_gateway={"rateLimits": [
        {"key": "endpoint", "calls": 12, "renewalPeriod": "minute"},
        {"key": "user", "calls": 3, "renewalPeriod": "minute"},
        {"key": "user", "principal": "vip@example.com", "calls": 6, "renewalPeriod": "minute"},
        {"key": "user_group", "principal": "team", "calls": 2, "renewalPeriod": "minute"},
    ]})
    flags = ["--rate-limit-redis-url", redis_url]
    with serve(tmp_path, [manifest], *flags, auth=identity) as one, \
            serve(tmp_path, [manifest], *flags, "--workers", "2", auth=identity) as two:
        urls = [one, two]
        # per user: 3 in total across both proxies (and both workers of the second), not 3 each
        assert sorted(asyncio.run(_spread(urls, "chat", 8, {"X-Forwarded-Email": "a@example.com"}))) == [200] * 3 + [429] * 5
        # a user's own limit over the default
        assert asyncio.run(_spread(urls, "chat", 8, {"X-Forwarded-Email": "vip@example.com"})).count(200) == 6
        # a group shared by its members, over the default per-user limit
        team = [asyncio.run(_spread(urls, "chat", 2, {"X-Forwarded-Email": f"m{i}@example.com",
                                                      "X-Forwarded-Groups": "team"})).count(200) for i in range(2)]
        assert team == [2, 0]
        # the endpoint: 12 in total (3 + 6 + 2 so far), whoever calls
        rest = asyncio.run(_spread(urls, "chat", 10, {"X-Forwarded-Email": "b@example.com"}))
        assert rest.count(200) == 1
        r = httpx.post(f"{two}/serving-endpoints/chat/invocations", json=BODY, headers={"X-Forwarded-Email": "c@x"})
        assert r.status_code == 429
        assert "12 calls per minute (endpoint)" in r.json()["message"]
        assert len(standin.stats.requests) == 12


def test_redis_outage_follows_each_endpoints_policy_and_recovers(tmp_path: Path,
                                                                 openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _standin, url = openai_standin
    server = RedisServer(tmp_path / "redis", password=PASSWORD)
    server.start()
    password_file = tmp_path / "redis-password"
    password_file.write_text(PASSWORD + "\n")
    limits = {"rateLimits": [{"key": "endpoint", "calls": 3, "renewalPeriod": "minute"}]}
    manifests = [endpoint("strict", [openai_entity(url)], ai_gateway=limits),
                 endpoint("lenient", [openai_entity(url)], ai_gateway=limits),
                 endpoint("free", [openai_entity(url)])]
    flags = ["--rate-limit-redis-url", server.url, "--rate-limit-redis-password-file", str(password_file),
             "--rate-limit-unavailable-endpoint", "lenient=open", "--rate-limit-redis-timeout", "0.3"]

    def statuses(name: str, n: int) -> list[int]:
        return [httpx.post(f"{proxy}/serving-endpoints/{name}/invocations", json=BODY, timeout=10).status_code
                for _ in range(n)]

    try:
        with serve(tmp_path, manifests, *flags) as proxy:
            assert httpx.get(f"{proxy}/readyz").json() == {"status": "ready",
                                                          "authentication": {"mode": "none", "open": True}}
            assert metric(proxy, "modelgate_rate_limit_store_up") == 1.0
            assert statuses("strict", 4) == [200, 200, 200, 429]
            server.stop()
            started = time.monotonic()
            r = httpx.post(f"{proxy}/serving-endpoints/strict/invocations", json=BODY, timeout=10)
            assert r.status_code == 503
            assert r.json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
            assert "cannot be checked" in r.json()["message"]
            assert r.headers["retry-after"] == "1"
            assert statuses("strict", 5) == [503] * 5  # no wait for Redis once it is known down
            assert statuses("lenient", 5) == [200] * 5  # open: admitted unchecked
            assert statuses("free", 2) == [200, 200]  # no limits: not concerned
            assert time.monotonic() - started < 5
            ready = httpx.get(f"{proxy}/readyz")
            assert ready.status_code == 503
            assert "endpoint 'strict': the rate-limit store is unreachable" in ready.json()["message"]
            assert "lenient" not in ready.json()["message"]
            assert metric(proxy, "modelgate_rate_limit_store_up") == 0.0
            assert metric(proxy, 'modelgate_rate_limit_unchecked_total{endpoint="lenient"}') == 5.0
            assert (metric(proxy, "modelgate_rate_limit_store_errors_total") or 0) >= 1
            server.start()  # an empty Redis (no persistence): counting starts afresh
            deadline = time.monotonic() + 15
            while httpx.get(f"{proxy}/readyz").status_code != 200:
                assert time.monotonic() < deadline, "the proxy did not notice Redis is back"
                time.sleep(0.2)
            assert metric(proxy, "modelgate_rate_limit_store_up") == 1.0
            assert statuses("strict", 4) == [200, 200, 200, 429]
            assert statuses("lenient", 4) == [200, 200, 200, 429]  # counted again
            server.stop()  # and again
            assert statuses("strict", 1) + statuses("lenient", 1) == [503, 200]
    finally:
        server.stop()


def test_a_wrong_password_is_an_unreachable_store(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    _standin, url = openai_standin
    server = RedisServer(tmp_path / "redis", password=PASSWORD)
    server.start()
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    manifest = endpoint("chat", [openai_entity(url)],
                        ai_gateway={"rateLimits": [{"key": "endpoint", "calls": 3, "renewalPeriod": "minute"}]})
    try:
        with serve(tmp_path, [manifest], "--rate-limit-redis-url", server.url, "--rate-limit-redis-password-file",
                   str(wrong), "--rate-limit-unavailable", "open") as proxy:
            r = httpx.post(f"{proxy}/serving-endpoints/chat/invocations", json=BODY)
            assert r.status_code == 200
            warnings = httpx.get(f"{proxy}/readyz").json()["warnings"]
            assert warnings == ["endpoint 'chat': the rate-limit store is unreachable; calls are admitted without "
                                "rate limits until it is back (policy: open)"]
            assert "not-the-password" not in httpx.get(f"{proxy}/metrics").text
            wrong.write_text(PASSWORD)  # the Secret is fixed: the next connection reads it
            deadline = time.monotonic() + 15
            while "warnings" in httpx.get(f"{proxy}/readyz").json():
                assert time.monotonic() < deadline
                time.sleep(0.2)
            codes = [httpx.post(f"{proxy}/serving-endpoints/chat/invocations", json=BODY).status_code
                     for _ in range(4)]
            assert codes == [200, 200, 200, 429]
    finally:
        server.stop()


@pytest.mark.parametrize(("flags", "message"), [
    (["--rate-limit-redis-url", "redis://:secret@127.0.0.1:6379"], "must not contain a password"),
    (["--rate-limit-redis-url", "http://127.0.0.1:6379"], "redis:// or rediss://"),
    (["--rate-limit-redis-url", "redis://127.0.0.1:6379", "--rate-limit-replicas", "3"], "in-process counters only"),
    (["--rate-limit-redis-password-file", "/nonexistent"], "needs --rate-limit-redis-url"),
    (["--rate-limit-redis-url", "redis://127.0.0.1:6379", "--rate-limit-redis-password-file", "/nonexistent"],
     "does not exist"),
    (["--rate-limit-unavailable-endpoint", "chat"], "NAME=closed|open"),
    (["--rate-limit-unavailable-endpoint", "nope=open"], "not a served endpoint"),
    (["--rate-limit-default-max-tokens", "0"], "at least 1"),
    (["--usage-metrics-principals", "-1"], "0 or more"),
])
def test_unusable_rate_limit_flags_stop_serve_with_a_message(tmp_path: Path, flags: list[str], message: str) -> None:
    manifest = tmp_path / "e.yaml"
    manifest.write_text(yaml.safe_dump(endpoint("chat", [openai_entity("http://127.0.0.1:9")])))
    result = subprocess.run([sys.executable, "-m", "modelgate_proxy", "serve", "-f", str(manifest), "--port",
                             str(free_port()), "--no-auth", *flags], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert "secret@" not in result.stderr
    assert "Traceback" not in result.stderr
