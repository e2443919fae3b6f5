"""The one explicit dispatch table: provider name -> adapter class.

Entries are import paths so that adding a provider is one line here plus one module, and a broken or missing
optional dependency of one adapter cannot stop the others from loading.
"""

from __future__ import annotations

import importlib
from functools import cache

from ..errors import ProviderConfigError
from .base import Provider

ADAPTERS: dict[str, str] = {
    "openai": "modelgate_proxy.providers.openai:OpenAIProvider",
    "custom": "modelgate_proxy.providers.custom:CustomProvider",
    "databricks-model-serving": "modelgate_proxy.providers.databricks:DatabricksProvider",
    "anthropic": "modelgate_proxy.providers.anthropic:AnthropicProvider",
    "cohere": "modelgate_proxy.providers.cohere:CohereProvider",
    "amazon-bedrock": "modelgate_proxy.providers.bedrock:BedrockProvider",
    "google-cloud-vertex-ai": "modelgate_proxy.providers.vertex:VertexProvider",
    "ai21labs": "modelgate_proxy.providers.ai21labs:AI21LabsProvider",
    "palm": "modelgate_proxy.providers.palm:PaLMProvider",
}


@cache
def adapter_class(provider: str) -> type[Provider]:
    """The adapter class for a provider name; :class:`ProviderConfigError` if there is none."""
    target = ADAPTERS.get(provider)
    if target is None:
        raise ProviderConfigError(f"provider {provider!r} is not supported")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ProviderConfigError(f"provider {provider!r} is not available: {exc}") from None
    cls: type[Provider] = getattr(module, attr)
    return cls
