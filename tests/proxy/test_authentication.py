"""``modelgate serve``'s authentication: on by default (no choice, or two, stop it with exit code 2), the
authenticating identity stage on the real query routes (``--auth-config``, ``--api-keys``) with the official openai
client and plain HTTP (the Databricks and MLflow shapes), ``/readyz`` saying the mode, and the credential sentinel.
The other official clients are in :mod:`.test_auth_clients`; RBAC-filtered reads in :mod:`.test_auth_rbac_k8s`."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest
import yaml

from modelgate_proxy.cli.manifests import ConfigError
from modelgate_proxy.cli.serve import gateway_settings
from modelgate_proxy.endpoints.services import GatewaySettings
from modelgate_proxy.stages.identity.apikey_mint import mint
from modelgate_proxy.stages.identity.auth_config import AuthConfig
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.server import free_port

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run_proxy

SECRETS = {"openai": {"api-key": FAKE_KEY}}
USAGE = {"usageTrackingConfig": {"enabled": True}}


def _auth_files(tmp_path: Path) -> tuple[Path, str, Path]:
    keys = tmp_path / "keys"
    keys.mkdir()
    minted = mint("alice@example.com", groups=["data-scientists"])
    (keys / "alice.yaml").write_text(yaml.safe_dump(minted.manifest))
    config = tmp_path / "auth.yaml"
    config.write_text(yaml.safe_dump({"mode": "bearer", "authorize": "authenticated",
                                      "api_keys": {"path": str(keys), "reload_interval": 0.2}}))
    return config, minted.key, keys


def test_api_key_with_the_openai_client_and_401s_in_each_shape(
    tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]
) -> None:
    standin, url = openai_standin
    config, key, keys = _auth_files(tmp_path)
    usage_log = tmp_path / "usage.jsonl"
    with run_proxy(tmp_path, [endpoint("chat", [openai_entity(url)], ai_gateway=USAGE)], secrets=SECRETS,
                   auth=["--auth-config", str(config)], extra=["--usage-log", str(usage_log)]) as proxy:
        ok = openai.OpenAI(base_url=proxy.base, api_key=key, max_retries=0)
        answer = ok.chat.completions.create(model="chat", messages=[{"role": "user", "content": "Hello"}])
        assert answer.choices[0].message.content == "You said: Hello"
        accepted = 1

        bad = openai.OpenAI(base_url=proxy.base, api_key="mgk_000000000000_" + "A" * 43, max_retries=0)
        with pytest.raises(openai.AuthenticationError) as info:
            bad.chat.completions.create(model="chat", messages=[{"role": "user", "content": "Hello"}])
        assert info.value.status_code == 401
        assert info.value.response.headers["www-authenticate"] == 'Bearer realm="modelgate", error="invalid_token"'
        assert info.value.body["type"] == "authentication_error"  # type: ignore[index]

        with httpx.Client(base_url=proxy.url, timeout=10) as client:
            none = client.post("/serving-endpoints/chat/invocations", json={"messages": [{"role": "user", "content": "x"}]})
            malformed = client.post("/serving-endpoints/chat/invocations", headers={"Authorization": "Token abc"},
                                    json={"messages": [{"role": "user", "content": "x"}]})
            mlflow = client.post("/endpoints/chat/invocations", json={"messages": [{"role": "user", "content": "x"}]})
            read_anonymous = client.get("/api/2.0/serving-endpoints/chat")
            read_ok = client.get("/api/2.0/serving-endpoints/chat", headers={"Authorization": f"Bearer {key}"})
            models_anonymous = client.get("/serving-endpoints/models")
            (keys / "alice.yaml").unlink()  # revoke
            t0 = time.monotonic()
            while True:
                revoked = client.post("/serving-endpoints/chat/invocations", headers={"Authorization": f"Bearer {key}"},
                                      json={"messages": [{"role": "user", "content": "x"}]})
                if revoked.status_code != 200:
                    break
                accepted += 1
                assert time.monotonic() - t0 < 3, "a deleted key was still accepted"
                time.sleep(0.05)
        assert none.status_code == 401
        assert none.json() == {"error_code": "UNAUTHENTICATED", "message": none.json()["message"]}
        assert none.headers["www-authenticate"] == 'Bearer realm="modelgate"'
        assert malformed.status_code == 401
        assert malformed.json()["error_code"] == "UNAUTHENTICATED"
        assert revoked.status_code == 401
        assert mlflow.status_code == 401
        assert list(mlflow.json()) == ["detail"]
        assert read_anonymous.status_code == 401
        assert read_anonymous.json()["error_code"] == "UNAUTHENTICATED"
        assert read_ok.status_code == 200
        assert read_ok.json()["name"] == "chat"
        assert models_anonymous.status_code == 401
        assert "error" in models_anonymous.json()
        assert len(standin.stats.requests) == accepted  # no refused request reached the provider
    records = [json.loads(line) for line in usage_log.read_text().splitlines()]
    assert records[0]["principal"] == "alice@example.com"
    assert records[0]["principal_type"] == "user"
    assert {r["status"] for r in records} >= {200, 401}  # refusals are recorded too
    text = usage_log.read_text()
    assert key not in text


def test_auth_config_errors_stop_serve_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "auth.yaml"
    bad.write_text(yaml.safe_dump({"mode": "bearer", "authorize": "authenticated"}))
    with pytest.raises(ConfigError, match="bearer mode needs"):
        gateway_settings({"auth_config": str(bad)})
    bad.write_text("mode: [unclosed")
    with pytest.raises(ConfigError, match="not YAML"):
        gateway_settings({"auth_config": str(bad)})
    with pytest.raises(ConfigError, match="No such file"):
        gateway_settings({"auth_config": str(tmp_path / "absent.yaml")})
    bad.write_text(yaml.safe_dump({"mode": "bearer", "authorize": "authenticated",
                                   "api_keys": {"path": str(tmp_path / "no-such-dir")}}))
    with pytest.raises(ConfigError, match="does not exist"):
        gateway_settings({"auth_config": str(bad)})
    good, _, _ = _auth_files(tmp_path)
    with pytest.raises(ConfigError, match="exclude each other"):
        gateway_settings({"auth_config": str(good), "identity_header": "X-User"})
    assert isinstance(gateway_settings({"auth_config": str(good)}).auth, AuthConfig)
    with pytest.raises(ConfigError, match="refusing to start without authentication"):
        gateway_settings({})


def _serve_exit(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    manifest = tmp_path / "e.yaml"
    manifest.write_text(yaml.safe_dump(endpoint("chat", [openai_entity("http://127.0.0.1:9")])))
    return subprocess.run([sys.executable, "-m", "modelgate_proxy", "serve", "-f", str(manifest), "--port",
                           str(free_port()), *flags], capture_output=True, text=True, timeout=60, check=False)


def test_serve_refuses_to_start_without_an_authentication_choice(tmp_path: Path) -> None:
    result = _serve_exit(tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "refusing to start without authentication" in lines[0]
    for flag in ("--auth-config", "--api-keys", "--no-auth"):
        assert flag in lines[0]


@pytest.mark.parametrize(("flags", "named"), [
    (["--no-auth", "--api-keys", "KEYS"], ("--api-keys", "--no-auth")),
    (["--auth-config", "AUTH", "--no-auth"], ("--auth-config", "--no-auth")),
    (["--api-keys", "KEYS", "--identity-header", "X-User"], ("--api-keys", "--identity-header")),
    (["--auth-config", "AUTH", "--api-keys", "KEYS"], ("--auth-config", "--api-keys")),
    (["--require-identity", "--no-auth"], ("--require-identity", "--no-auth")),
])
def test_two_authentication_choices_stop_serve_naming_both(tmp_path: Path, flags: list[str],
                                                             named: tuple[str, str]) -> None:
    config, _key, keys = _auth_files(tmp_path)
    paths = {"KEYS": str(keys), "AUTH": str(config)}
    result = _serve_exit(tmp_path, *(paths.get(f, f) for f in flags))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"{named[0]} and {named[1]} exclude each other" in result.stderr


def test_readyz_says_the_mode_and_no_auth_is_open_and_says_so(
    tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str], caplog: pytest.LogCaptureFixture
) -> None:
    standin, url = openai_standin
    config, key, keys = _auth_files(tmp_path)
    none_config = tmp_path / "none.yaml"
    none_config.write_text("mode: none\n")
    manifests = [endpoint("chat", [openai_entity(url)])]
    seen: dict[str, object] = {}
    for label, auth in (("no-auth", ["--no-auth"]), ("mode none", ["--auth-config", str(none_config)]),
                        ("api keys", ["--api-keys", str(keys)]), ("auth config", ["--auth-config", str(config)]),
                        ("headers", ["--identity-header", "X-User"])):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="modelgate"), \
                run_proxy(tmp_path, manifests, secrets=SECRETS, auth=auth) as proxy, \
                httpx.Client(base_url=proxy.url, timeout=10) as client:
            ready = client.get("/readyz")
            assert ready.status_code == 200
            seen[label] = ready.json()["authentication"]
            # probes and metrics never need a credential, whatever the mode
            assert client.get("/healthz").status_code == 200
            assert client.get("/metrics").status_code == 200
            anonymous = client.post("/serving-endpoints/chat/invocations",
                                    json={"messages": [{"role": "user", "content": "x"}]})
            assert anonymous.status_code == (200 if label in ("no-auth", "mode none", "headers") else 401), label
        start = [r for r in caplog.records if r.getMessage().startswith("serving endpoints: chat")]
        assert len(start) == 1
        assert (start[0].levelno == logging.WARNING) == (label in ("no-auth", "mode none")), label
        assert ("OPEN" in start[0].getMessage()) == (label in ("no-auth", "mode none")), label
    assert seen == {"no-auth": {"mode": "none", "open": True}, "mode none": {"mode": "none", "open": True},
                    "api keys": {"mode": "bearer", "open": False}, "auth config": {"mode": "bearer", "open": False},
                    "headers": {"mode": "trusted-header", "open": False}}
    assert key not in caplog.text
    assert standin.stats.requests  # the open modes reached the provider


def test_library_app_factory_takes_no_silent_default() -> None:
    from modelgate_proxy.server import create_app

    with pytest.raises(TypeError):
        create_app([])  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        GatewaySettings()  # type: ignore[call-arg]


def test_per_user_and_per_group_limits_act_on_the_authenticated_principals(
    tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]
) -> None:
    _standin, url = openai_standin
    manifest = endpoint("chat", [openai_entity(url)], ai_gateway={"rateLimits": [
        {"key": "user", "calls": 1, "renewalPeriod": "minute"},
        {"key": "user", "principal": "alice@example.com", "calls": 3, "renewalPeriod": "minute"},
        {"key": "user_group", "principal": "support", "calls": 2, "renewalPeriod": "minute"},
    ]})
    keys = tmp_path / "keys"
    keys.mkdir()
    minted = {who: mint(f"{who}@example.com", groups=groups) for who, groups in
              (("alice", ["support"]), ("bob", []), ("carol", ["support"]), ("dave", ["support"]))}
    for who, m in minted.items():
        (keys / f"{who}.yaml").write_text(yaml.safe_dump(m.manifest))
    config = tmp_path / "auth.yaml"
    config.write_text(yaml.safe_dump({"mode": "bearer", "authorize": "authenticated", "api_keys": {"path": str(keys)}}))
    body = {"messages": [{"role": "user", "content": "one two three"}]}

    with run_proxy(tmp_path, [manifest], secrets=SECRETS, auth=["--auth-config", str(config)]) as proxy:
        def status(who: str, spoof: dict[str, str] | None = None) -> int:
            headers = {"Authorization": f"Bearer {minted[who].key}", **(spoof or {})}
            return httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations", json=body, headers=headers).status_code

        assert [status("alice") for _ in range(4)] == [200, 200, 200, 429]
        assert [status("bob") for _ in range(2)] == [200, 429]
        # a spoofed identity header changes nothing: the principal is the key's
        assert status("bob", {"X-Forwarded-Email": "alice@example.com"}) == 429
        assert [status("carol"), status("dave"), status("carol")] == [200, 200, 429]


def test_no_caller_credential_in_logs_metrics_records_or_error_bodies(
    tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str], caplog: pytest.LogCaptureFixture
) -> None:
    _standin, url = openai_standin
    config, key, _keys = _auth_files(tmp_path)
    wrong = "mgk_0123456789ab_SENTINELwrongkey" + "x" * 10
    garbage = "SENTINEL-garbage-credential"
    jwt = "eyJhbGciOiJSUzI1NiIsImtpZCI6IlNFTlRJTkVMIn0.eyJzdWIiOiJTRU5USU5FTC1qd3QifQ.U0VOVElORUwtc2lnbmF0dXJl"
    """A bearer token shaped like a JWT (OIDC, Kubernetes): no authenticator here vouches for it."""
    usage_log, payload_log = tmp_path / "usage.jsonl", tmp_path / "payload.jsonl"
    gateway = {**USAGE, "inferenceTableConfig": {"enabled": True, "catalogName": "ml", "schemaName": "logs"}}
    bodies: list[str] = []
    with caplog.at_level(logging.DEBUG), run_proxy(
        tmp_path, [endpoint("chat", [openai_entity(url)], ai_gateway=gateway)], secrets=SECRETS,
        auth=["--auth-config", str(config)], extra=["--usage-log", str(usage_log), "--payload-log", str(payload_log)],
    ) as proxy, httpx.Client(base_url=proxy.url, timeout=10) as client:
        for credential in (key, wrong, garbage, jwt, key):
            for path in ("/serving-endpoints/chat/invocations", "/serving-endpoints/chat/completions",
                         "/endpoints/chat/invocations"):
                r = client.post(path, headers={"Authorization": f"Bearer {credential}"},
                                json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]})
                bodies.append(r.text + json.dumps(dict(r.headers)))
            for read in ("/api/2.0/serving-endpoints/chat", "/api/2.0/serving-endpoints", "/serving-endpoints/models",
                         "/api/2.0/endpoints/", "/api/2.0/endpoints/chat", "/serving-endpoints/models/chat"):
                r = client.get(read, headers={"Authorization": f"Bearer {credential}"})
                bodies.append(r.text + json.dumps(dict(r.headers)))
            r = client.get("/api/2.0/serving-endpoints", auth=("token", credential))  # curl -u token:$TOKEN
            bodies.append(r.text + json.dumps(dict(r.headers)))
        metrics = client.get("/metrics").text
    places = {"logs": caplog.text, "metrics": metrics, "usage": usage_log.read_text(),
              "payload": payload_log.read_text(), "answers": "\n".join(bodies)}
    assert "alice@example.com" in places["usage"]  # the check looks where the principal is
    assert '"hi"' in places["payload"]  # and where the request is logged
    assert "UNAUTHENTICATED" in places["answers"]
    assert '"name":"chat"' in places["answers"]  # the reads answered the valid key
    for secret in (key, key.split("_", 2)[2], wrong, garbage, jwt, jwt.split(".")[2]):
        for where, text in places.items():
            assert secret not in text, f"a caller credential appears in {where}"
