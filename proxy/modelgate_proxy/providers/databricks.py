"""A model serving endpoint in a Databricks workspace (``databricks-model-serving`` provider).

Reference: Databricks REST API "Query a serving endpoint"
(https://docs.databricks.com/api/workspace/servingendpoints/query): ``POST
{workspace}/serving-endpoints/{name}/invocations`` with ``Authorization: Bearer <token>``; chat, completions
and embeddings bodies and answers follow the OpenAI format; ``"stream": true`` answers with
``data: <chunk>`` events. The external model's ``name`` is the workspace endpoint's name. Databricks does not
document ``stream_options``, so none is sent; its stream chunks carry ``usage`` themselves.
"""

from __future__ import annotations

from urllib.parse import quote

from ..spec import DatabricksModelServingConfig, ExternalModel, Task
from .base import Credentials, HttpClient
from .openai_wire import OpenAICompatibleProvider, bearer_headers, join_url


class DatabricksProvider(OpenAICompatibleProvider):
    name = "databricks-model-serving"
    ask_stream_usage = False

    def __init__(self, model: ExternalModel, credentials: Credentials, http: HttpClient) -> None:
        super().__init__(model, credentials, http)
        config = model.databricks_model_serving_config
        assert config is not None  # guaranteed by the spec's rules
        self.config: DatabricksModelServingConfig = config
        self._init_urls()

    def url_for(self, task: Task) -> str:
        return join_url(
            self.config.databricks_workspace_url, f"serving-endpoints/{quote(self.model.name, safe='')}/invocations"
        )

    def body_model(self) -> str | None:
        return None

    async def headers(self) -> dict[str, str]:
        token = self.credentials.resolve(
            self.config.databricks_api_token,
            self.config.databricks_api_token_plaintext,
            field="databricksModelServingConfig.databricksApiToken",
        )
        return bearer_headers(token)
