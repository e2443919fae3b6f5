"""OpenAI, Azure OpenAI with an API key, and Azure OpenAI with Microsoft Entra ID.

- OpenAI (https://platform.openai.com/docs/api-reference/authentication): ``{base}/chat/completions`` etc.,
  ``Authorization: Bearer <key>``, optional ``OpenAI-Organization``; base default ``https://api.openai.com/v1``.
- Azure OpenAI (https://learn.microsoft.com/azure/ai-services/openai/reference):
  ``{resource}/openai/deployments/{deployment}/chat/completions?api-version=<version>``; the deployment picks
  the model, so no ``model`` is sent; auth ``api-key: <key>`` or ``Authorization: Bearer <Entra token>``.
- Azure OpenAI v1 API (https://learn.microsoft.com/azure/foundry/openai/api-version-lifecycle), chosen by
  ``openaiApiVersion: v1`` (or the v1 preview versions ``preview`` / ``latest``, sent as ``api-version``):
  ``{resource}/openai/v1/chat/completions`` etc. with the deployment name as ``model``; same auth.
"""

from __future__ import annotations

from urllib.parse import quote

from ..spec import ExternalModel, OpenAIConfig, Task
from .base import Credentials, HttpClient
from .entra import EntraTokenSource
from .openai_wire import TASK_PATHS, OpenAICompatibleProvider, bearer_headers, join_url

DEFAULT_API_BASE = "https://api.openai.com/v1"
AZURE_V1_VERSIONS = frozenset({"v1", "preview", "latest"})
"""``openaiApiVersion`` values that select Azure's v1 API instead of the dated deployment paths."""


class OpenAIProvider(OpenAICompatibleProvider):
    name = "openai"

    def __init__(self, model: ExternalModel, credentials: Credentials, http: HttpClient) -> None:
        super().__init__(model, credentials, http)
        config = model.openai_config
        assert config is not None  # guaranteed by the spec's rules
        self.config: OpenAIConfig = config
        self.api_type = config.openai_api_type or "openai"
        self.entra: EntraTokenSource | None = None
        if self.api_type == "azuread":
            assert config.microsoft_entra_tenant_id is not None
            assert config.microsoft_entra_client_id is not None
            self.entra = EntraTokenSource(
                authority=config.microsoft_entra_authority_host,
                tenant_id=config.microsoft_entra_tenant_id,
                client_id=config.microsoft_entra_client_id,
                client_secret=self._entra_secret,
                http=http,
            )
        self._init_urls()

    def url_for(self, task: Task) -> str:
        config = self.config
        if self.api_type == "openai":
            return join_url(config.openai_api_base or DEFAULT_API_BASE, TASK_PATHS[task])
        assert config.openai_api_base
        assert config.openai_deployment_name
        assert config.openai_api_version
        version = config.openai_api_version
        if version in AZURE_V1_VERSIONS:
            url = join_url(config.openai_api_base, f"openai/v1/{TASK_PATHS[task]}")
            return url if version == "v1" else f"{url}?api-version={version}"
        deployment = quote(config.openai_deployment_name, safe="")
        path = f"openai/deployments/{deployment}/{TASK_PATHS[task]}"
        return join_url(config.openai_api_base, path) + "?api-version=" + quote(version)

    def body_model(self) -> str | None:
        if self.api_type == "openai":
            return self.model.name
        # Azure: the dated paths name the deployment in the URL; the v1 API takes it as the model.
        return self.config.openai_deployment_name if self.config.openai_api_version in AZURE_V1_VERSIONS else None

    async def headers(self) -> dict[str, str]:
        if self.entra is not None:
            return bearer_headers(await self.entra.token())
        key = self.credentials.resolve(
            self.config.openai_api_key, self.config.openai_api_key_plaintext, field="openaiConfig.openaiApiKey"
        )
        if self.api_type == "azure":
            return {"Content-Type": "application/json", "api-key": key}
        headers = bearer_headers(key)
        if self.config.openai_organization:
            headers["OpenAI-Organization"] = self.config.openai_organization
        return headers

    def _entra_secret(self) -> str:
        return self.credentials.resolve(
            self.config.microsoft_entra_client_secret,
            self.config.microsoft_entra_client_secret_plaintext,
            field="openaiConfig.microsoftEntraClientSecret",
        )
