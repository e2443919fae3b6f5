"""OpenAI embeddings ↔ Vertex AI text embeddings (``text-embedding-005``, ``text-multilingual-embedding-002``,
``gemini-embedding-001``) through ``:predict``.

Request ``{"instances": [{"content", "task_type"?, "title"?}], "parameters": {"autoTruncate"?,
"outputDimensionality"?}}``; answer ``{"predictions": [{"embeddings": {"values": [...], "statistics":
{"token_count", "truncated"}}}]}``. Reference:
https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/text-embeddings-api
"""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest, BadUpstreamResponse
from ..json_types import JSON
from . import openai_objects as oai

PROVIDER = "google-cloud-vertex-ai"


def predict_request(payload: JSON) -> JSON:
    value = payload.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise BadRequest(f"{PROVIDER} embeddings take input as a string or a list of strings", param="input")
    instance_extra: JSON = {}
    if payload.get("task_type") is not None:
        instance_extra["task_type"] = payload["task_type"]
    if payload.get("title") is not None:
        instance_extra["title"] = payload["title"]
    body: JSON = {"instances": [{"content": t, **instance_extra} for t in texts]}
    parameters: JSON = {}
    if payload.get("dimensions") is not None:
        parameters["outputDimensionality"] = payload["dimensions"]
    if payload.get("auto_truncate") is not None:
        parameters["autoTruncate"] = payload["auto_truncate"]
    if parameters:
        body["parameters"] = parameters
    return body


def embeddings_from_predictions(answer: Any, model: str, encoding_format: Any) -> JSON:
    try:
        predictions = answer["predictions"]
        vectors = [[float(x) for x in p["embeddings"]["values"]] for p in predictions]
        tokens = sum(int((p["embeddings"].get("statistics") or {}).get("token_count") or 0) for p in predictions)
    except (KeyError, TypeError, ValueError):
        raise BadUpstreamResponse(f"{PROVIDER} returned predictions without embeddings") from None
    return oai.embeddings_list(vectors, model=model, prompt_tokens=tokens, encoding_format=encoding_format)
