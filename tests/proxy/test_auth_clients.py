"""Authentication through the official clients, unmodified, against ``modelgate serve --api-keys DIR`` processes
the tests start: the ``openai`` client (``api_key=``), MLflow's deployments client (``DATABRICKS_HOST`` and
``DATABRICKS_TOKEN``) and the Databricks SDK (``WorkspaceClient(host=, token=)``). A key minted with
``modelgate api-key create --write DIR`` works with each; a wrong key fails with 401 in each client's own error
type, with ``WWW-Authenticate``; deleting the key's file revokes it (measured)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.standins.openai_api import OpenAIStandIn

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity
from .serve_process import serve_process

SECRETS = {"openai": {"api-key": FAKE_KEY}}
WRONG = "mgk_0123456789ab_" + "W" * 43
"""Well-formed, but no such key."""
CHALLENGE = 'Bearer realm="modelgate", error="invalid_token"'


def _create_key(keys: Path, principal: str) -> str:
    out = subprocess.run([sys.executable, "-m", "modelgate_proxy", "api-key", "create", "--principal", principal,
                          "--write", str(keys)], capture_output=True, text=True, check=True, timeout=60)
    return out.stderr.strip().rsplit(" ", 1)[-1]


def _manifests(url: str) -> list[dict[str, object]]:
    return [endpoint("chat", [openai_entity(url)])]


@pytest.fixture
def databricks_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in ("DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_TOKEN",
                "DATABRICKS_HOST"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_openai_client_with_an_api_key_and_without(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str]) -> None:
    standin, url = openai_standin
    key = _create_key(tmp_path / "keys", "alice@example.com")
    with serve_process(tmp_path, _manifests(url), secrets=SECRETS, auth=["--api-keys", str(tmp_path / "keys")]) as proxy:
        base = proxy.url + "/serving-endpoints"
        good = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
        answer = good.chat.completions.create(model="chat", messages=[{"role": "user", "content": "Hello"}])
        assert answer.choices[0].message.content == "You said: Hello"
        assert [m.id for m in good.models.list()] == ["chat"]
        bad = openai.OpenAI(base_url=base, api_key=WRONG, max_retries=0)
        for call in (lambda: bad.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}]),
                     lambda: list(bad.models.list())):
            with pytest.raises(openai.AuthenticationError) as info:
                call()
            assert info.value.status_code == 401
            assert info.value.response.headers["www-authenticate"] == CHALLENGE
            assert info.value.body["type"] == "authentication_error"  # type: ignore[index]
            assert WRONG not in info.value.response.text
        none = httpx.get(base + "/models", timeout=10)
        assert none.status_code == 401
        assert none.headers["www-authenticate"] == 'Bearer realm="modelgate"'
        assert none.json()["error"]["type"] == "authentication_error"
    assert len(standin.stats.requests) == 1  # no refused request reached the provider


def test_mlflow_deployments_client_with_an_api_key_and_a_wrong_one(
    tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str], databricks_env: pytest.MonkeyPatch
) -> None:
    from mlflow.deployments import get_deploy_client
    from requests.exceptions import HTTPError

    _, url = openai_standin
    key = _create_key(tmp_path / "keys", "alice@example.com")
    with serve_process(tmp_path, _manifests(url), secrets=SECRETS, auth=["--api-keys", str(tmp_path / "keys")]) as proxy:
        databricks_env.setenv("DATABRICKS_HOST", proxy.url)
        databricks_env.setenv("DATABRICKS_TOKEN", key)
        client = get_deploy_client("databricks")
        answer = client.predict(endpoint="chat", inputs={"messages": [{"role": "user", "content": "Hello!"}]})
        assert answer["choices"][0]["message"]["content"] == "You said: Hello!"
        assert [e["name"] for e in client.list_endpoints()] == ["chat"]
        assert client.get_endpoint("chat")["name"] == "chat"
        databricks_env.setenv("DATABRICKS_TOKEN", WRONG)
        wrong = get_deploy_client("databricks")
        with pytest.raises(HTTPError) as info:
            wrong.predict(endpoint="chat", inputs={"messages": [{"role": "user", "content": "x"}]})
        assert info.value.response is not None
        assert info.value.response.status_code == 401
        assert "UNAUTHENTICATED" in str(info.value)  # MLflow quotes the Databricks-shaped body
        # (MLflow's error keeps no headers; the same request, as the client sent it, carries the challenge)
        raw = httpx.post(f"{proxy.url}/serving-endpoints/chat/invocations", headers={"Authorization": f"Bearer {WRONG}"},
                         json={"messages": [{"role": "user", "content": "x"}]}, timeout=10)
        assert (raw.status_code, raw.headers["www-authenticate"]) == (401, CHALLENGE)
        assert raw.json()["error_code"] == "UNAUTHENTICATED"
        with pytest.raises(HTTPError, match="401"):
            wrong.list_endpoints()
        assert WRONG not in str(info.value)


def test_databricks_sdk_with_an_api_key_a_wrong_one_and_revocation(
    tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str], databricks_env: pytest.MonkeyPatch
) -> None:
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.errors import Unauthenticated
    from databricks.sdk.service.serving import ChatMessage, ChatMessageRole

    _, url = openai_standin
    keys = tmp_path / "keys"
    key = _create_key(keys, "alice@example.com")
    other = _create_key(keys, "bob@example.com")
    with serve_process(tmp_path, _manifests(url), secrets=SECRETS, auth=["--api-keys", str(keys)]) as proxy:
        w = WorkspaceClient(host=proxy.url, token=key, auth_type="pat")
        messages = [ChatMessage(role=ChatMessageRole.USER, content="Hello")]
        answer = w.serving_endpoints.query(name="chat", messages=messages)
        assert answer.choices is not None
        assert answer.choices[0].message is not None
        assert answer.choices[0].message.content == "You said: Hello"
        assert [e.name for e in w.serving_endpoints.list()] == ["chat"]
        assert w.serving_endpoints.get("chat").name == "chat"
        wrong = WorkspaceClient(host=proxy.url, token=WRONG, auth_type="pat")
        for call in (lambda: wrong.serving_endpoints.query(name="chat", messages=messages),
                     lambda: list(wrong.serving_endpoints.list()), lambda: wrong.serving_endpoints.get("chat")):
            with pytest.raises(Unauthenticated) as info:
                call()
            assert WRONG not in str(info.value)

        # revocation: delete alice's file; the directory is polled every second (--api-keys' interval)
        (keys / f"modelgate-api-key-{key.split('_')[1]}.yaml").unlink()
        t0 = time.monotonic()
        while True:
            try:
                w.serving_endpoints.query(name="chat", messages=messages)
            except Unauthenticated:
                break
            assert time.monotonic() - t0 < 5, "a deleted key file was still accepted"
            time.sleep(0.02)
        revoked_after = time.monotonic() - t0
        print(f"\nAPI key revoked {revoked_after * 1000:.0f} ms after its file was deleted (--api-keys, 1 s poll)")
        assert revoked_after < 2.5  # the poll interval plus one reload, with room for a loaded machine
        kept = WorkspaceClient(host=proxy.url, token=other, auth_type="pat")
        assert kept.serving_endpoints.query(name="chat", messages=messages).choices is not None  # the others stay
