"""``--judge-file``: endpoints built only as guardrail judges (what the operator renders into the proxy of an
endpoint judged by another ServingEndpoint): they judge, and are not served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from modelgate_proxy.cli import build_parser
from modelgate_proxy.cli.manifests import ConfigError
from modelgate_proxy.cli.serve import uvicorn_config
from tests.standins.guard_judge import GuardJudgeStandIn
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.server import serve_app

from .conftest import FAKE_KEY
from .harness import endpoint, openai_entity, run_proxy

JUDGE_KEY = "sk-judge-file-0123"
SECRETS = {"openai": {"api-key": FAKE_KEY}, "judge": {"token": JUDGE_KEY}}


@pytest.fixture
def judge() -> Iterator[tuple[GuardJudgeStandIn, str]]:
    standin = GuardJudgeStandIn(api_key=JUDGE_KEY)
    with serve_app(standin.app) as url:
        yield standin, url


def _chat(text: str) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}]}


def test_a_judge_file_endpoint_judges_and_is_not_served(tmp_path: Path, openai_standin: tuple[OpenAIStandIn, str],
                                                        judge: tuple[GuardJudgeStandIn, str]) -> None:
    _standin, url = openai_standin
    judge_standin, judge_url = judge
    judges = tmp_path / "judges.yaml"
    judges.write_text(yaml.safe_dump(endpoint("guard", [openai_entity(judge_url, model="llama-guard-3-8b",
                                                                      key_ref="{{secrets/judge/token}}")])))
    chat = endpoint("chat", [openai_entity(url)], ai_gateway={"guardrails": {"input": {"safety": True},
                                                                              "judge": {"endpoint": "guard"}}})
    with run_proxy(tmp_path, [chat], secrets=SECRETS, extra=["--judge-file", str(judges)]) as proxy:
        base = f"{proxy.url}/serving-endpoints"
        assert httpx.post(f"{base}/chat/invocations", json=_chat("hello")).status_code == 200
        blocked = httpx.post(f"{base}/chat/invocations", json=_chat("UNSAFE-WEAPONS"))
        assert blocked.status_code == 400
        assert blocked.json()["message"] == "Request blocked by the input guardrail 'safety' (categories: S9)"
        assert judge_standin.stats.requests[-1]["headers"]["authorization"] == f"Bearer {JUDGE_KEY}"
        assert len(judge_standin.stats.requests) == 2
        # not routed, not listed
        assert httpx.post(f"{base}/guard/invocations", json=_chat("hi")).status_code == 404
        assert httpx.post(f"{base}/chat/completions", json={"model": "guard", **_chat("hi")}).status_code == 404
        listed = httpx.get(f"{proxy.url}/api/2.0/serving-endpoints").json()["endpoints"]
        assert [e["name"] for e in listed] == ["chat"]
        assert len(judge_standin.stats.requests) == 2


def test_a_judge_file_endpoint_of_a_served_name_is_refused(tmp_path: Path) -> None:
    chat = endpoint("chat", [openai_entity("http://127.0.0.1:9")])
    served, judges = tmp_path / "served.yaml", tmp_path / "judges.yaml"
    served.write_text(yaml.safe_dump(chat))
    judges.write_text(yaml.safe_dump(chat))
    args = build_parser().parse_args(["serve", "-f", str(served), "--judge-file", str(judges), "--no-auth"])
    with pytest.raises(ConfigError, match="--judge-file: chat is also a served endpoint"):
        uvicorn_config(args)
