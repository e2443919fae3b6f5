"""Caller identity from trusted headers: off unless configured, service principals win over users, groups parsed
and bounded, --require-identity answers 401; an endpoint without aiGateway gets no extra stage."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from modelgate_proxy.cli import build_parser
from modelgate_proxy.cli.manifests import ConfigError
from modelgate_proxy.cli.serve import gateway_settings, uvicorn_config
from modelgate_proxy.errors import BadRequest
from modelgate_proxy.stages.identity.headers import ANONYMOUS, MAX_GROUPS, IdentityReader, IdentitySettings, Principal
from tests.standins.openai_api import OpenAIStandIn

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run_proxy

SECRETS = {"openai": {"api-key": FAKE_KEY}}


def headers(**values: str) -> list[tuple[bytes, bytes]]:
    return [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in values.items()]


def test_reader_trusts_only_configured_headers() -> None:
    sent = headers(x_forwarded_user="mallory", x_forwarded_groups="admins")
    assert IdentityReader(IdentitySettings()).read(sent) == ANONYMOUS
    reader = IdentityReader(IdentitySettings(user_header="X-Forwarded-User", groups_header="X-Forwarded-Groups",
                                             service_principal_header="X-Client-Id"))
    assert reader.read(sent) == Principal("user", "mallory", ("admins",))
    assert reader.read(headers(x_forwarded_user="u", x_client_id="app-1")) == Principal("service_principal", "app-1")
    many = ",".join(f"g{i}" for i in range(500)) + ", g1 ,,"
    assert len(reader.read(headers(x_forwarded_user="u", x_forwarded_groups=many)).groups) == MAX_GROUPS
    assert reader.read(headers(x_forwarded_user="  ")) == ANONYMOUS
    with pytest.raises(BadRequest):
        reader.read(headers(x_forwarded_user="x" * 300))


def test_settings_from_the_command_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--require-identity needs"):
        gateway_settings({"require_identity": True})
    with pytest.raises(ConfigError, match="at least 1"):
        gateway_settings({"rate_limit_replicas": 0, "no_auth": True})
    manifest = tmp_path / "e.yaml"
    manifest.write_text("apiVersion: serving.modelgate.io/v1alpha1\nkind: ServingEndpoint\nmetadata: {name: e}\n"
                        "spec: {servedEntities: [{externalModel: {name: m, provider: openai, task: llm/v1/chat, "
                        "openaiConfig: {openaiApiKeyPlaintext: k}}}]}\n")
    args = build_parser().parse_args(["serve", "-f", str(manifest), "--rate-limit-replicas", "3",
                                      "--identity-header", "X-Forwarded-Email"])
    services = uvicorn_config(args).app.state.gateway.services
    assert services.settings.rate_limit_replicas == 3
    assert services.settings.identity.user_header == "X-Forwarded-Email"


def test_require_identity_and_no_cost_without_ai_gateway(tmp_path: Path,
                                                         openai_standin: tuple[OpenAIStandIn, str]) -> None:
    standin, url = openai_standin
    manifests = [endpoint("plain", [openai_entity(url)])]
    with run_proxy(tmp_path, manifests, secrets=SECRETS) as proxy:
        assert [type(s).__name__ for s in proxy.state.endpoints["plain"].pipeline.stages] == ["TrafficSplit"]
    auth = ["--identity-header", "X-Forwarded-Email", "--require-identity"]
    with run_proxy(tmp_path, manifests, secrets=SECRETS, auth=auth) as proxy:
        target = f"{proxy.url}/serving-endpoints/plain/invocations"
        body = {"messages": [{"role": "user", "content": "hi"}]}
        r = httpx.post(target, json=body)
        assert r.status_code == 401
        assert r.json()["error_code"] == "UNAUTHENTICATED"
        assert "X-Forwarded-Email" in r.json()["message"]
        r = httpx.post(f"{proxy.url}/serving-endpoints/chat/completions", json={"model": "plain", **body})
        assert r.status_code == 401
        assert r.json()["error"]["type"] == "authentication_error"
        assert len(standin.stats.requests) == 0
        assert httpx.post(target, json=body, headers={"X-Forwarded-Email": "a@example.com"}).status_code == 200
