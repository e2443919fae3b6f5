"""OpenAI embeddings ↔ Bedrock InvokeModel bodies of the two embedding families.

- Amazon Titan Text Embeddings (``amazon.titan-embed-text-v1`` / ``-v2:0``): ``{"inputText", "dimensions"?,
  "normalize"?}`` → ``{"embedding": [...], "inputTextTokenCount"}``; one text per call.
  Reference: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-titan-embed-text.html
- Cohere Embed (``cohere.embed-english-v3`` …): ``{"texts", "input_type", "truncate"?, "embedding_types"?}`` →
  ``{"embeddings": [[...]]}`` (or ``{"embeddings": {"float": [[...]]}}`` when ``embedding_types`` is given).
  Reference: https://docs.aws.amazon.com/bedrock/latest/userguide/model-parameters-embed.html
"""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest, BadUpstreamResponse, UnsupportedTask
from ..json_types import JSON
from . import openai_objects as oai

PROVIDER = "amazon-bedrock"
COHERE_DEFAULT_INPUT_TYPE = "search_document"
"""Cohere Embed requires ``input_type``; callers may send it, otherwise documents are assumed."""


def embeddings_request(payload: JSON, family: str) -> JSON:
    texts = _texts(payload.get("input"))
    if family == "amazon":
        return _titan(texts, payload)
    if family == "cohere":
        return _cohere(texts, payload)
    raise UnsupportedTask(f"{PROVIDER} {family} models do not serve llm/v1/embeddings; use an amazon (Titan) "
                          "or cohere (Embed) model")


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise BadRequest(f"{PROVIDER} embeddings take input as a string or a list of strings", param="input")
    return value


def _titan(texts: list[str], payload: JSON) -> JSON:
    if len(texts) != 1:
        raise BadRequest("Amazon Titan embedding models take one input text per request", param="input")
    body: JSON = {"inputText": texts[0]}
    if payload.get("dimensions") is not None:
        body["dimensions"] = payload["dimensions"]
    if payload.get("normalize") is not None:
        body["normalize"] = payload["normalize"]
    return body


def _cohere(texts: list[str], payload: JSON) -> JSON:
    body: JSON = {"texts": texts, "input_type": payload.get("input_type") or COHERE_DEFAULT_INPUT_TYPE}
    if payload.get("truncate") is not None:
        body["truncate"] = payload["truncate"]
    if payload.get("dimensions") is not None:
        raise BadRequest("Cohere Embed on Bedrock does not support dimensions", param="dimensions")
    return body


def embeddings_from_answer(answer: Any, family: str, model: str, encoding_format: Any) -> JSON:
    try:
        if family == "amazon":
            vectors = [_floats(answer["embedding"])]
            tokens = int(answer.get("inputTextTokenCount") or 0)
        else:
            raw = answer["embeddings"]
            if isinstance(raw, dict):
                raw = raw["float"]
            vectors = [_floats(v) for v in raw]
            tokens = 0  # Cohere Embed on Bedrock reports no token count in the body
    except (KeyError, TypeError, ValueError):
        raise BadUpstreamResponse(f"{PROVIDER} returned an embeddings answer without embeddings") from None
    return oai.embeddings_list(vectors, model=model, prompt_tokens=tokens, encoding_format=encoding_format)


def _floats(vector: Any) -> list[float]:
    if not isinstance(vector, list):
        raise TypeError
    return [float(x) for x in vector]
