"""The operator's provider/task judgement agrees with what the proxy's adapters actually serve."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from modelgate_operator import spec_problems
from modelgate_proxy.errors import UnsupportedTask
from modelgate_proxy.providers.bedrock_embeddings import embeddings_request
from modelgate_proxy.providers.registry import ADAPTERS, adapter_class
from modelgate_proxy.spec import TASKS, ServingEndpointSpec

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def _sample_specs() -> dict[str, dict[str, Any]]:
    """One sample spec per provider (and per Bedrock family), single entity."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(SAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc or doc.get("kind") != "ServingEndpoint" or len(doc["spec"]["servedEntities"]) != 1:
                continue
            model = doc["spec"]["servedEntities"][0]["externalModel"]
            key = model["provider"]
            if key == "amazon-bedrock":
                key += "/" + model["amazonBedrockConfig"]["bedrockProvider"]
            found.setdefault(key, doc["spec"])
    return found


SPECS = _sample_specs()


def _with_task(spec: dict[str, Any], task: str) -> ServingEndpointSpec | None:
    changed = copy.deepcopy(spec)
    changed["servedEntities"][0]["externalModel"]["task"] = task
    try:
        return ServingEndpointSpec.model_validate(changed)
    except ValidationError:
        return None


def test_every_adapter_and_bedrock_family_has_a_sample() -> None:
    providers = {k.split("/")[0] for k in SPECS}
    assert providers == set(ADAPTERS)
    assert {k.split("/")[1] for k in SPECS if k.startswith("amazon-bedrock/")} == {"anthropic", "ai21labs", "cohere", "amazon"}


@pytest.mark.parametrize("provider", sorted(ADAPTERS))
def test_provider_tasks_are_the_adapters(provider: str) -> None:
    cls = adapter_class(provider)
    expected = frozenset() if getattr(cls, "retired", False) else frozenset(cls.tasks)
    assert spec_problems.provider_tasks(provider) == expected


@pytest.mark.parametrize("key", sorted(SPECS))
@pytest.mark.parametrize("task", sorted(TASKS))
def test_problems_iff_the_proxy_cannot_serve_the_task(key: str, task: str) -> None:
    spec = _with_task(SPECS[key], task)
    if spec is None:
        pytest.skip(f"{key} with {task} is rejected by the schema already")
    provider, _, family = key.partition("/")
    cls = adapter_class(provider)
    servable = not getattr(cls, "retired", False) and task in cls.tasks
    if family and task == "llm/v1/embeddings":  # ask the proxy's own Bedrock embeddings code
        try:
            embeddings_request({"input": "hello"}, family)
        except UnsupportedTask:
            servable = False
    issues = [p for p in spec_problems.problems(spec) if "cannot serve task" in p or "retired" in p]
    assert (not issues) == servable, issues
