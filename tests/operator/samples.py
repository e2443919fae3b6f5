"""ServingEndpoint manifests shared by the operator tests."""

from __future__ import annotations

from typing import Any

from modelgate_proxy.spec import API_VERSION, KIND


def endpoint(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def two_entities(*, plaintext: str = "sk-plain-0000", ref: str = "{{secrets/openai-creds/api-key}}", split: int = 90) -> dict[str, Any]:
    """gpt-4o (plaintext key) + claude (a Secret reference on a custom OpenAI-compatible provider)."""
    return {
        "servedEntities": [
            {
                "externalModel": {
                    "name": "gpt-4o",
                    "provider": "openai",
                    "task": "llm/v1/chat",
                    "openaiConfig": {"openaiApiKeyPlaintext": plaintext, "openaiApiBase": "http://127.0.0.1:9/v1"},
                }
            },
            {
                "name": "claude",
                "externalModel": {
                    "name": "claude-3-5-sonnet",
                    "provider": "custom",
                    "task": "llm/v1/chat",
                    "customProviderConfig": {
                        "customProviderUrl": "http://127.0.0.1:9/v1",
                        "bearerTokenAuth": {"token": ref},
                    },
                },
            },
        ],
        "trafficConfig": {
            "routes": [
                {"servedEntityName": "gpt-4o", "trafficPercentage": split},
                {"servedEntityName": "claude", "trafficPercentage": 100 - split},
            ]
        },
    }
