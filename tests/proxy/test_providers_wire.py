"""Azure OpenAI (api-key and Entra ID), custom and Databricks providers against their stand-ins."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from modelgate_proxy.providers.entra import EntraTokenSource
from modelgate_proxy.upstream import Upstream
from tests.standins.azure_openai import AzureOpenAIStandIn
from tests.standins.databricks_serving import DatabricksServingStandIn
from tests.standins.entra import EntraStandIn
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.server import serve_app

from .harness import endpoint, run_proxy

MSG = [{"role": "user", "content": "hello azure"}]


def azure_entity(base: str, *, api_type: str, task: str = "llm/v1/chat", deployment: str = "gpt4o",
                 **extra: Any) -> dict[str, Any]:
    config = {"openaiApiType": api_type, "openaiApiBase": base, "openaiApiVersion": "2024-10-21",
              "openaiDeploymentName": deployment, **extra}
    return {"name": f"azure-{api_type}", "externalModel": {"name": "gpt-4o", "provider": "openai", "task": task,
                                                           "openaiConfig": config}}


def test_azure_api_key(tmp_path: Path) -> None:
    standin = AzureOpenAIStandIn({"gpt4o": "gpt-4o-2024-08-06"}, api_key="azure-secret-1")
    with serve_app(standin.app) as url:
        manifests = [endpoint("az", [azure_entity(url, api_type="azure", openaiApiKey="{{secrets/az/key}}")])]
        with run_proxy(tmp_path, manifests, secrets={"az": {"key": "azure-secret-1"}}) as proxy:
            client = openai.OpenAI(base_url=proxy.base, api_key="x", max_retries=0)
            chat = client.chat.completions.create(model="az", messages=MSG)
            assert chat.model == "gpt-4o-2024-08-06"
            assert chat.choices[0].message.content == "You said: hello azure"
            sent = standin.stats.last
            assert sent["path"] == "/openai/deployments/gpt4o/chat/completions"
            assert sent["query"] == "api-version=2024-10-21"
            assert sent["headers"]["api-key"] == "azure-secret-1"
            assert "authorization" not in sent["headers"]
            assert "model" not in sent["body"]
            # The stream's prompt_filter_results chunk (no id, no choices) is not passed on.
            chunks = list(client.chat.completions.create(model="az", messages=MSG, stream=True))
            assert all(c.id for c in chunks)
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: hello azure"


@pytest.mark.parametrize(("version", "query"), [("v1", ""), ("preview", "api-version=preview")])
def test_azure_v1_api(tmp_path: Path, version: str, query: str) -> None:
    standin = AzureOpenAIStandIn({"gpt4o": "gpt-4o-2024-08-06"}, api_key="azure-secret-1")
    with serve_app(standin.app) as url:
        entity = azure_entity(url, api_type="azure", openaiApiKey="{{secrets/az/key}}", openaiApiVersion=version)
        with run_proxy(tmp_path, [endpoint("az", [entity])], secrets={"az": {"key": "azure-secret-1"}}) as proxy:
            client = openai.OpenAI(base_url=proxy.base, api_key="x", max_retries=0)
            chat = client.chat.completions.create(model="az", messages=MSG)
            assert chat.model == "gpt-4o-2024-08-06"
            sent = standin.stats.last
            assert (sent["path"], sent["query"]) == ("/openai/v1/chat/completions", query)
            assert sent["body"]["model"] == "gpt4o"  # the deployment, not the model's name
            assert sent["headers"]["api-key"] == "azure-secret-1"


def test_azure_stand_in_requires_api_version_and_key() -> None:
    standin = AzureOpenAIStandIn({"gpt4o": "gpt-4o"}, api_key="k")
    with serve_app(standin.app) as url:
        r = httpx.post(f"{url}/openai/deployments/gpt4o/chat/completions", json={"messages": MSG}, headers={"api-key": "k"})
        assert r.status_code == 404
        assert r.json() == {"error": {"code": "404", "message": "Resource not found"}}
        r = httpx.post(f"{url}/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21",
                       json={"messages": MSG}, headers={"api-key": "wrong"})
        assert r.status_code == 401
        r = httpx.post(f"{url}/openai/deployments/other/chat/completions?api-version=2024-10-21",
                       json={"messages": MSG}, headers={"api-key": "k"})
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "DeploymentNotFound"


def test_azure_entra_id(tmp_path: Path) -> None:
    entra = EntraStandIn("tenant-1", "client-1", "entra-secret")
    standin = AzureOpenAIStandIn({"gpt4o": "gpt-4o"}, api_key=None, tokens=lambda: entra.issued)
    with serve_app(entra.app) as login, serve_app(standin.app) as url:
        entity = azure_entity(url, api_type="azuread", microsoftEntraTenantId="tenant-1",
                              microsoftEntraClientId="client-1", microsoftEntraClientSecret="{{secrets/entra/secret}}",
                              microsoftEntraAuthorityHost=login)
        with run_proxy(tmp_path, [endpoint("aad", [entity])], secrets={"entra": {"secret": "entra-secret"}}) as proxy:
            client = openai.OpenAI(base_url=proxy.base, api_key="x", max_retries=0)
            for _ in range(3):
                assert client.chat.completions.create(model="aad", messages=MSG).choices[0].message.content
            assert len(entra.issued) == 1  # cached
            assert standin.stats.last["headers"]["authorization"] == f"Bearer {entra.issued[0]}"


def test_azure_entra_wrong_secret_is_a_clear_error(tmp_path: Path) -> None:
    entra = EntraStandIn("tenant-1", "client-1", "entra-secret")
    standin = AzureOpenAIStandIn({"gpt4o": "gpt-4o"}, api_key=None, tokens=lambda: entra.issued)
    with serve_app(entra.app) as login, serve_app(standin.app) as url:
        entity = azure_entity(url, api_type="azuread", microsoftEntraTenantId="tenant-1",
                              microsoftEntraClientId="client-1", microsoftEntraClientSecretPlaintext="not-it",
                              microsoftEntraAuthorityHost=login)
        with run_proxy(tmp_path, [endpoint("aad", [entity])]) as proxy:
            r = httpx.post(f"{proxy.url}/serving-endpoints/aad/invocations", json={"messages": MSG})
            assert r.status_code == 503
            assert "invalid_client" in r.json()["message"]
            assert "not-it" not in r.text


def test_entra_token_single_flight_and_refresh() -> None:
    async def scenario(login: str, entra: EntraStandIn) -> None:
        upstream = Upstream()
        await upstream.start()
        now = [1000.0]
        source = EntraTokenSource(authority=login, tenant_id="t", client_id="c", client_secret=lambda: "s",
                                   http=upstream, clock=lambda: now[0])
        tokens = await asyncio.gather(*(source.token() for _ in range(100)))
        assert len(set(tokens)) == 1
        assert source.fetches == 1
        assert len(entra.issued) == 1
        now[0] += 3000  # still valid (3600 s lifetime, refreshed 5 min early)
        assert await source.token() == tokens[0]
        assert source.fetches == 1
        now[0] += 400  # inside the refresh margin: one refresh for all concurrent callers
        fresh = await asyncio.gather(*(source.token() for _ in range(50)))
        assert len(set(fresh)) == 1
        assert fresh[0] != tokens[0]
        assert source.fetches == 2
        await upstream.close()

    entra = EntraStandIn("t", "c", "s", expires_in=3600, delay=0.05)
    with serve_app(entra.app) as login:
        asyncio.run(scenario(login, entra))


def test_custom_provider_bearer_and_api_key_header(tmp_path: Path) -> None:
    standin = OpenAIStandIn(api_key="custom-token")
    with serve_app(standin.app) as url:
        bearer = {"name": "bearer", "externalModel": {"name": "llama-3", "provider": "custom", "task": "llm/v1/chat",
                  "customProviderConfig": {"customProviderUrl": url + "/v1",
                                           "bearerTokenAuth": {"token": "{{secrets/custom/token}}"}}}}
        header = {"name": "header", "externalModel": {"name": "llama-3", "provider": "custom", "task": "llm/v1/chat",
                  "customProviderConfig": {"customProviderUrl": url + "/v1",
                                           "apiKeyAuth": {"key": "x-api-key", "valuePlaintext": "hdr-key"}}}}
        manifests = [endpoint("bearer", [bearer]), endpoint("header", [header])]
        with run_proxy(tmp_path, manifests, secrets={"custom": {"token": "custom-token"}}) as proxy:
            client = openai.OpenAI(base_url=proxy.base, api_key="x", max_retries=0)
            assert client.chat.completions.create(model="bearer", messages=MSG).model == "llama-3"
            assert standin.stats.last["headers"]["authorization"] == "Bearer custom-token"
            # The stand-in wants a bearer token: the header-key entity is refused, with the provider's status.
            with pytest.raises(openai.AuthenticationError) as info:
                client.chat.completions.create(model="header", messages=MSG)
            assert info.value.status_code == 401
            assert standin.stats.last["headers"]["x-api-key"] == "hdr-key"


def test_databricks_model_serving(tmp_path: Path) -> None:
    standin = DatabricksServingStandIn({"team-llm": "llm/v1/chat"}, token="dapi-upstream")
    with serve_app(standin.app) as url:
        entity = {"externalModel": {"name": "team-llm", "provider": "databricks-model-serving", "task": "llm/v1/chat",
                  "databricksModelServingConfig": {"databricksWorkspaceUrl": url,
                                                   "databricksApiToken": "{{secrets/dbx/token}}"}}}
        with run_proxy(tmp_path, [endpoint("dbx", [entity])], secrets={"dbx": {"token": "dapi-upstream"}}) as proxy:
            r = httpx.post(f"{proxy.url}/serving-endpoints/dbx/invocations",
                           json={"messages": MSG, "max_tokens": 5, "extra_params": {"top_k": 2}})
            assert r.status_code == 200
            assert r.headers["served-model-name"] == "team-llm"
            assert r.json()["choices"][0]["message"]["content"] == "You said: hello azure"
            sent = standin.stats.last
            assert sent["path"] == "/serving-endpoints/team-llm/invocations"
            assert sent["headers"]["authorization"] == "Bearer dapi-upstream"
            assert sent["body"] == {"messages": MSG, "max_tokens": 5, "top_k": 2}
            client = openai.OpenAI(base_url=proxy.base, api_key="x", max_retries=0)
            chunks = list(client.chat.completions.create(model="dbx", messages=MSG, stream=True))
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "You said: hello azure"
            assert chunks[-1].usage is not None
