"""OpenAI embeddings ↔ Cohere's v2 Embed API (``POST /v2/embed``).

``input`` (a string or a list of strings) becomes ``texts``; ``input_type`` defaults to ``search_document``
(required by v3+ models) and the caller may override it with its own ``input_type``; ``embedding_types`` is
``["float"]``; ``dimensions`` → ``output_dimension``; ``truncate`` and other Cohere parameters pass through.
Reference: https://docs.cohere.com/reference/embed
"""

from __future__ import annotations

from typing import Any

from ..errors import BadRequest
from ..json_types import JSON
from . import openai_objects as oa
from .params import rename

DEFAULT_INPUT_TYPE = "search_document"


def embed_body(payload: JSON) -> JSON:
    """The ``/v2/embed`` body for an OpenAI embeddings payload, without ``model``."""
    body = dict(payload)
    texts = body.pop("input", None)
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise BadRequest("input must be a string or a non-empty list of strings (token arrays are not supported)", param="input")
    body.pop("encoding_format", None)  # applied to the answer, see embeddings_from_response
    body.pop("user", None)
    rename(body, "dimensions", "output_dimension")
    return {"texts": texts, "input_type": DEFAULT_INPUT_TYPE, "embedding_types": ["float"], **body}


def embeddings_from_response(response: JSON, model: str, encoding_format: Any) -> JSON:
    """Cohere's ``embeddings.float`` as an OpenAI embeddings list; raises KeyError/TypeError if malformed."""
    vectors = response["embeddings"]["float"]
    billed = (response.get("meta") or {}).get("billed_units") or {}
    return oa.embeddings_list(vectors, model=model, prompt_tokens=int(billed.get("input_tokens") or 0), encoding_format=encoding_format)
