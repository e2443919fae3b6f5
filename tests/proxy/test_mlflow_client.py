"""MLflow's Databricks deployments client, unmodified, against the proxy (DATABRICKS_HOST points at it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.standins.openai_api import OpenAIStandIn

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run_proxy


def test_predict_and_predict_stream(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str],
                                    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from mlflow.deployments import get_deploy_client

    standin, url = openai_standin
    manifests = [endpoint("chat", [openai_entity(url)]),
                 endpoint("embed", [openai_entity(url, model="text-embedding-3-small", task="llm/v1/embeddings")])]
    with run_proxy(tmp_path, manifests, secrets={"openai": {"api-key": FAKE_KEY}}) as proxy:
        monkeypatch.setenv("DATABRICKS_HOST", proxy.url)
        monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-caller")
        client = get_deploy_client("databricks")
        answer = client.predict(endpoint="chat", inputs={
            "messages": [{"role": "user", "content": "Hello!"}], "temperature": 0.1, "max_tokens": 20,
            "extra_params": {"top_k": 3}})
        assert answer["choices"][0]["message"]["content"] == "You said: Hello!"
        sent = standin.stats.last["body"]
        assert sent["top_k"] == 3
        assert "extra_params" not in sent
        assert sent["model"] == "gpt-4o-mini"

        chunks = list(client.predict_stream(endpoint="chat", inputs={"messages": [{"role": "user", "content": "a b"}]}))
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        assert text == "You said: a b"
        assert chunks[-1]["usage"]["total_tokens"] > 0

        emb = client.predict(endpoint="embed", inputs={"input": ["hello"]})
        assert emb["data"][0]["embedding"] == [5.0, 0.5, -0.25]
    # The Databricks SDK under the client probes /.well-known/databricks-config and warns when that fails.
    assert not [r for r in caplog.records if "host metadata" in r.getMessage()]


def test_predict_error_is_raised(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.deployments import get_deploy_client
    from requests.exceptions import HTTPError

    _, url = openai_standin
    with run_proxy(tmp_path, [endpoint("chat", [openai_entity(url)])], secrets={"openai": {"api-key": FAKE_KEY}}) as proxy:
        monkeypatch.setenv("DATABRICKS_HOST", proxy.url)
        monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-caller")
        client = get_deploy_client("databricks")
        with pytest.raises(HTTPError, match=r"404.*RESOURCE_DOES_NOT_EXIST"):
            client.predict(endpoint="missing", inputs={"messages": [{"role": "user", "content": "x"}]})
