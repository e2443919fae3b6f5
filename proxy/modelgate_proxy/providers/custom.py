"""Any OpenAI-compatible API (``custom`` provider): ``{customProviderUrl}/chat/completions`` etc., with a
bearer token (``Authorization: Bearer <token>``) or an API key in a named header (``<key>: <value>``).
Wire format: https://platform.openai.com/docs/api-reference/chat/create.
"""

from __future__ import annotations

from ..spec import CustomProviderConfig, ExternalModel, Task
from .base import Credentials, HttpClient
from .openai_wire import TASK_PATHS, OpenAICompatibleProvider, bearer_headers, join_url


class CustomProvider(OpenAICompatibleProvider):
    name = "custom"

    def __init__(self, model: ExternalModel, credentials: Credentials, http: HttpClient) -> None:
        super().__init__(model, credentials, http)
        config = model.custom_provider_config
        assert config is not None  # guaranteed by the spec's rules
        self.config: CustomProviderConfig = config
        self._init_urls()

    def url_for(self, task: Task) -> str:
        return join_url(self.config.custom_provider_url, TASK_PATHS[task])

    async def headers(self) -> dict[str, str]:
        bearer, api_key = self.config.bearer_token_auth, self.config.api_key_auth
        if bearer is not None:
            token = self.credentials.resolve(
                bearer.token, bearer.token_plaintext, field="customProviderConfig.bearerTokenAuth.token"
            )
            return bearer_headers(token)
        assert api_key is not None
        value = self.credentials.resolve(
            api_key.value, api_key.value_plaintext, field="customProviderConfig.apiKeyAuth.value"
        )
        return {"Content-Type": "application/json", api_key.key: value}
