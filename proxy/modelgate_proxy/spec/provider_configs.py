"""Provider configurations of an external model, one model per ``<provider>Config`` block.

Field names follow the Databricks serving-endpoint API (``openai_config.openai_api_key`` becomes
``openaiConfig.openaiApiKey``). Every secret field has a ``...Plaintext`` twin; exactly one of the two is set.
Fields marked "modelgate extension" do not exist in Databricks; they let a platform team point a provider at
a regional or private base URL.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from .rules import Rule, exactly_one, has
from .secrets import Plaintext, SecretReference
from .spec_model import SpecModel

HttpUrl = Annotated[str, Field(pattern=r"^https?://[^\s/?#]+[^\s]*$", max_length=2048, json_schema_extra={
    "x-modelgate-format": "must be an http:// or https:// URL with a host and no spaces"})]
"""An http(s) URL."""

ShortText = Annotated[str, Field(min_length=1, max_length=256)]


class OpenAIConfig(SpecModel):
    """OpenAI, Azure OpenAI with an API key (``openaiApiType: azure``) or with Microsoft Entra ID (``azuread``)."""

    openai_api_key: SecretReference | None = None
    """Reference to the OpenAI or Azure OpenAI API key. Not used with ``azuread``."""
    openai_api_key_plaintext: Plaintext | None = None
    """The API key given inline (moved into an operator-owned Secret)."""
    openai_api_type: Literal["openai", "azure", "azuread"] | None = None
    """``openai`` (default), ``azure`` (Azure OpenAI with an API key) or ``azuread`` (Microsoft Entra ID)."""
    openai_api_base: HttpUrl | None = None
    """Base URL of the API. Default ``https://api.openai.com/v1``; required for Azure (the resource URL)."""
    openai_api_version: Annotated[str, Field(pattern=r"^(\d{4}-\d{2}-\d{2}(-preview)?|v1|preview|latest)$", max_length=32,
                                             json_schema_extra={"x-modelgate-format": "must be a date such as 2024-10-21 (optionally with -preview), v1, preview or latest"})] | None = None
    """Azure OpenAI API version (``api-version`` query parameter), e.g. ``2024-10-21``; required for Azure.
    ``v1`` selects Azure's v1 API (``/openai/v1/...``, the deployment name sent as ``model``); ``preview`` and
    ``latest`` select it with that ``api-version``."""
    openai_deployment_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+$", max_length=64, json_schema_extra={
        "x-modelgate-format": "must consist of letters, digits, '.', '_' and '-'"})] | None = None
    """Azure OpenAI deployment name; required for Azure."""
    openai_organization: ShortText | None = None
    """OpenAI organization ID, sent as the ``OpenAI-Organization`` header."""
    microsoft_entra_tenant_id: ShortText | None = None
    """Entra (Azure AD) tenant ID; required for ``azuread``."""
    microsoft_entra_client_id: ShortText | None = None
    """Entra application (client) ID; required for ``azuread``."""
    microsoft_entra_client_secret: SecretReference | None = None
    """Reference to the Entra client secret; required for ``azuread``."""
    microsoft_entra_client_secret_plaintext: Plaintext | None = None
    """The Entra client secret given inline."""
    microsoft_entra_authority_host: HttpUrl | None = None
    """modelgate extension: the Entra authority host, default ``https://login.microsoftonline.com``."""

    rules: ClassVar[tuple[Rule, ...]] = (
        *exactly_one(
            "openai_api_key", "openaiApiKey", "openai_api_key_plaintext", "openaiApiKeyPlaintext",
            when=(
                "!has(self.openaiApiType) || self.openaiApiType != 'azuread'",
                lambda o: o.openai_api_type != "azuread",
                "openaiApiType is not azuread",
            ),
        ),
        *exactly_one(
            "microsoft_entra_client_secret", "microsoftEntraClientSecret",
            "microsoft_entra_client_secret_plaintext", "microsoftEntraClientSecretPlaintext",
            when=(
                "has(self.openaiApiType) && self.openaiApiType == 'azuread'",
                lambda o: o.openai_api_type == "azuread",
                "openaiApiType is azuread",
            ),
        ),
        Rule(
            cel="!has(self.openaiApiType) || self.openaiApiType == 'openai' || has(self.openaiApiBase)",
            message="openaiApiBase (the Azure OpenAI resource URL) is required when openaiApiType is azure or azuread",
            check=lambda o: o.openai_api_type in (None, "openai") or has(o, "openai_api_base"),
            field_path=".openaiApiBase",
            reason="FieldValueRequired",
        ),
        Rule(
            cel="!has(self.openaiApiType) || self.openaiApiType == 'openai' || has(self.openaiApiVersion)",
            message="openaiApiVersion is required when openaiApiType is azure or azuread",
            check=lambda o: o.openai_api_type in (None, "openai") or has(o, "openai_api_version"),
            field_path=".openaiApiVersion",
            reason="FieldValueRequired",
        ),
        Rule(
            cel="!has(self.openaiApiType) || self.openaiApiType == 'openai' || has(self.openaiDeploymentName)",
            message="openaiDeploymentName is required when openaiApiType is azure or azuread",
            check=lambda o: o.openai_api_type in (None, "openai") or has(o, "openai_deployment_name"),
            field_path=".openaiDeploymentName",
            reason="FieldValueRequired",
        ),
        Rule(
            cel="has(self.openaiApiType) && self.openaiApiType == 'azuread' || "
            "!has(self.microsoftEntraTenantId) && !has(self.microsoftEntraClientId)",
            message="microsoftEntraTenantId and microsoftEntraClientId are only used when openaiApiType is azuread",
            check=lambda o: o.openai_api_type == "azuread"
            or not (has(o, "microsoft_entra_tenant_id") or has(o, "microsoft_entra_client_id")),
            field_path=".microsoftEntraTenantId",
            reason="FieldValueForbidden",
        ),
        Rule(
            cel="!has(self.openaiApiType) || self.openaiApiType != 'azuread' || "
            "has(self.microsoftEntraTenantId) && has(self.microsoftEntraClientId)",
            message="microsoftEntraTenantId and microsoftEntraClientId are required when openaiApiType is azuread",
            check=lambda o: o.openai_api_type != "azuread"
            or (has(o, "microsoft_entra_tenant_id") and has(o, "microsoft_entra_client_id")),
            field_path=".microsoftEntraTenantId",
            reason="FieldValueRequired",
        ),
        Rule(
            cel="!has(self.openaiApiType) || self.openaiApiType != 'azuread' || "
            "!has(self.openaiApiKey) && !has(self.openaiApiKeyPlaintext)",
            message="openaiApiKey is not used when openaiApiType is azuread (Entra ID authenticates instead)",
            check=lambda o: o.openai_api_type != "azuread"
            or not (has(o, "openai_api_key") or has(o, "openai_api_key_plaintext")),
            field_path=".openaiApiKey",
            reason="FieldValueForbidden",
        ),
    )


class AnthropicConfig(SpecModel):
    """Anthropic's Messages API."""

    anthropic_api_key: SecretReference | None = None
    """Reference to the Anthropic API key (sent as ``x-api-key``)."""
    anthropic_api_key_plaintext: Plaintext | None = None
    """The Anthropic API key given inline."""
    anthropic_api_base: HttpUrl | None = None
    """modelgate extension: base URL, default ``https://api.anthropic.com``."""

    rules: ClassVar[tuple[Rule, ...]] = tuple(
        exactly_one("anthropic_api_key", "anthropicApiKey", "anthropic_api_key_plaintext", "anthropicApiKeyPlaintext")
    )


class CohereConfig(SpecModel):
    """Cohere's v2 API."""

    cohere_api_key: SecretReference | None = None
    """Reference to the Cohere API key."""
    cohere_api_key_plaintext: Plaintext | None = None
    """The Cohere API key given inline."""
    cohere_api_base: HttpUrl | None = None
    """Base URL, default ``https://api.cohere.com``."""

    rules: ClassVar[tuple[Rule, ...]] = tuple(
        exactly_one("cohere_api_key", "cohereApiKey", "cohere_api_key_plaintext", "cohereApiKeyPlaintext")
    )


class AmazonBedrockConfig(SpecModel):
    """Amazon Bedrock, signed with AWS SigV4.

    Authenticate with access keys, or set ``instanceProfileArn`` to use the proxy pod's own AWS credential chain
    (IRSA / EKS Pod Identity / instance profile).
    """

    aws_region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$", max_length=32, json_schema_extra={
        "x-modelgate-format": "must be an AWS region such as us-east-1"})]
    """AWS region of the Bedrock runtime, e.g. ``us-east-1``."""
    bedrock_provider: Literal["anthropic", "cohere", "ai21labs", "amazon"]
    """Model family behind Bedrock: ``anthropic``, ``cohere``, ``ai21labs`` or ``amazon``."""
    aws_access_key_id: SecretReference | None = None
    """Reference to the AWS access key ID."""
    aws_access_key_id_plaintext: Plaintext | None = None
    """The AWS access key ID given inline."""
    aws_secret_access_key: SecretReference | None = None
    """Reference to the AWS secret access key."""
    aws_secret_access_key_plaintext: Plaintext | None = None
    """The AWS secret access key given inline."""
    aws_session_token: SecretReference | None = None
    """modelgate extension: reference to an AWS session token for temporary credentials."""
    aws_session_token_plaintext: Plaintext | None = None
    """modelgate extension: the AWS session token given inline."""
    instance_profile_arn: Annotated[str, Field(pattern=r"^arn:aws[a-z-]*:iam::\d{12}:", max_length=2048, json_schema_extra={
        "x-modelgate-format": "must be an IAM ARN: arn:aws:iam::<12-digit account>:..."})] | None = None
    """Use the pod's AWS credential chain (IRSA, Pod Identity, instance profile) instead of access keys."""
    uc_service_credential_name: ShortText | None = None
    """Databricks Unity Catalog service credential; not available outside Databricks (reported as invalid)."""
    aws_endpoint_url: HttpUrl | None = None
    """modelgate extension: Bedrock runtime endpoint, default ``https://bedrock-runtime.<region>.amazonaws.com``."""

    rules: ClassVar[tuple[Rule, ...]] = (
        *exactly_one(
            "aws_access_key_id", "awsAccessKeyId", "aws_access_key_id_plaintext", "awsAccessKeyIdPlaintext",
            when=("!has(self.instanceProfileArn) && !has(self.ucServiceCredentialName)",
                  lambda o: not has(o, "instance_profile_arn") and not has(o, "uc_service_credential_name"),
                  "neither instanceProfileArn nor ucServiceCredentialName is set"),
        ),
        *exactly_one(
            "aws_secret_access_key", "awsSecretAccessKey",
            "aws_secret_access_key_plaintext", "awsSecretAccessKeyPlaintext",
            when=("has(self.awsAccessKeyId) || has(self.awsAccessKeyIdPlaintext)",
                  lambda o: has(o, "aws_access_key_id") or has(o, "aws_access_key_id_plaintext"),
                  "an access key ID is given"),
        ),
        Rule(
            cel="!(has(self.awsSessionToken) && has(self.awsSessionTokenPlaintext))",
            message="set only one of awsSessionToken and awsSessionTokenPlaintext",
            check=lambda o: not (has(o, "aws_session_token") and has(o, "aws_session_token_plaintext")),
            field_path=".awsSessionTokenPlaintext",
            reason="FieldValueForbidden",
        ),
        Rule(
            cel="!(has(self.instanceProfileArn) && (has(self.awsAccessKeyId) || has(self.awsAccessKeyIdPlaintext)))",
            message="authenticate with either access keys or instanceProfileArn, not both",
            check=lambda o: not (
                has(o, "instance_profile_arn") and (has(o, "aws_access_key_id") or has(o, "aws_access_key_id_plaintext"))
            ),
            field_path=".instanceProfileArn",
            reason="FieldValueForbidden",
        ),
        Rule(
            cel="has(self.awsAccessKeyId) || has(self.awsAccessKeyIdPlaintext) || "
            "!(has(self.awsSecretAccessKey) || has(self.awsSecretAccessKeyPlaintext) || "
            "has(self.awsSessionToken) || has(self.awsSessionTokenPlaintext))",
            message="awsSecretAccessKey and awsSessionToken need awsAccessKeyId",
            check=lambda o: has(o, "aws_access_key_id") or has(o, "aws_access_key_id_plaintext") or not (
                has(o, "aws_secret_access_key") or has(o, "aws_secret_access_key_plaintext")
                or has(o, "aws_session_token") or has(o, "aws_session_token_plaintext")
            ),
            field_path=".awsAccessKeyId",
            reason="FieldValueRequired",
        ),
    )


class GoogleCloudVertexAiConfig(SpecModel):
    """Google Cloud Vertex AI (Gemini, and Anthropic models on Vertex)."""

    project_id: Annotated[str, Field(pattern=r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$", max_length=30, json_schema_extra={
        "x-modelgate-format": "must be a Google Cloud project ID: 6-30 lowercase letters, digits and '-', starting "
        "with a letter"})]
    """Google Cloud project ID."""
    region: Annotated[str, Field(pattern=r"^[a-z]+(-[a-z0-9]+)*$", max_length=64, json_schema_extra={
        "x-modelgate-format": "must be a Google Cloud region such as us-central1"})]
    """Vertex AI location, e.g. ``us-central1`` (or ``global``)."""
    private_key: SecretReference | None = None
    """Reference to the service account's JSON key file (the whole file as downloaded from Google Cloud)."""
    private_key_plaintext: Plaintext | None = None
    """The service account's JSON key file given inline."""
    vertex_api_base: HttpUrl | None = None
    """modelgate extension: API base URL, default ``https://<region>-aiplatform.googleapis.com``."""

    rules: ClassVar[tuple[Rule, ...]] = tuple(
        exactly_one("private_key", "privateKey", "private_key_plaintext", "privateKeyPlaintext")
    )


class DatabricksModelServingConfig(SpecModel):
    """A model serving endpoint in a Databricks workspace."""

    databricks_workspace_url: HttpUrl
    """Workspace URL, e.g. ``https://my-workspace.cloud.databricks.com``."""
    databricks_api_token: SecretReference | None = None
    """Reference to a token of a user or service principal with Can Query on the target endpoint."""
    databricks_api_token_plaintext: Plaintext | None = None
    """The Databricks token given inline."""

    rules: ClassVar[tuple[Rule, ...]] = tuple(
        exactly_one(
            "databricks_api_token", "databricksApiToken", "databricks_api_token_plaintext", "databricksApiTokenPlaintext"
        )
    )


class Ai21LabsConfig(SpecModel):
    """AI21 Labs (Jamba)."""

    ai21labs_api_key: SecretReference | None = None
    """Reference to the AI21 Labs API key."""
    ai21labs_api_key_plaintext: Plaintext | None = None
    """The AI21 Labs API key given inline."""
    ai21labs_api_base: HttpUrl | None = None
    """modelgate extension: base URL, default ``https://api.ai21.com``."""

    rules: ClassVar[tuple[Rule, ...]] = tuple(
        exactly_one("ai21labs_api_key", "ai21labsApiKey", "ai21labs_api_key_plaintext", "ai21labsApiKeyPlaintext")
    )


class PaLMConfig(SpecModel):
    """Google PaLM (legacy; the PaLM API is retired and requests to it are refused)."""

    palm_api_key: SecretReference | None = None
    """Reference to the PaLM API key."""
    palm_api_key_plaintext: Plaintext | None = None
    """The PaLM API key given inline."""

    rules: ClassVar[tuple[Rule, ...]] = tuple(
        exactly_one("palm_api_key", "palmApiKey", "palm_api_key_plaintext", "palmApiKeyPlaintext")
    )


class BearerTokenAuth(SpecModel):
    """``Authorization: Bearer <token>``."""

    token: SecretReference | None = None
    """Reference to the bearer token."""
    token_plaintext: Plaintext | None = None
    """The bearer token given inline."""

    rules: ClassVar[tuple[Rule, ...]] = tuple(exactly_one("token", "token", "token_plaintext", "tokenPlaintext"))


class ApiKeyAuth(SpecModel):
    """An API key sent in a named HTTP header: ``<key>: <value>``."""

    key: Annotated[str, Field(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", max_length=128, json_schema_extra={
        "x-modelgate-format": "must be an HTTP header name (letters, digits and !#$%&'*+.^_`|~-)"})]
    """Name of the HTTP header that carries the key, e.g. ``x-api-key``."""
    value: SecretReference | None = None
    """Reference to the API key."""
    value_plaintext: Plaintext | None = None
    """The API key given inline."""

    rules: ClassVar[tuple[Rule, ...]] = tuple(exactly_one("value", "value", "value_plaintext", "valuePlaintext"))


class CustomProviderConfig(SpecModel):
    """Any OpenAI-compatible API."""

    custom_provider_url: HttpUrl
    """Base URL of the OpenAI-compatible API (requests go to ``<url>/chat/completions`` and so on)."""
    bearer_token_auth: BearerTokenAuth | None = None
    """Authenticate with a bearer token."""
    api_key_auth: ApiKeyAuth | None = None
    """Authenticate with an API key in a named header."""

    rules: ClassVar[tuple[Rule, ...]] = (
        Rule(
            cel="has(self.bearerTokenAuth) != has(self.apiKeyAuth)",
            message="set exactly one of bearerTokenAuth and apiKeyAuth",
            check=lambda o: has(o, "bearer_token_auth") != has(o, "api_key_auth"),
            field_path=".bearerTokenAuth",
            reason="FieldValueInvalid",
        ),
    )


Provider = Literal[
    "openai",
    "anthropic",
    "cohere",
    "amazon-bedrock",
    "google-cloud-vertex-ai",
    "databricks-model-serving",
    "ai21labs",
    "custom",
    "palm",
]

PROVIDER_CONFIG_FIELDS: dict[str, tuple[str, str]] = {
    "openai": ("openai_config", "openaiConfig"),
    "anthropic": ("anthropic_config", "anthropicConfig"),
    "cohere": ("cohere_config", "cohereConfig"),
    "amazon-bedrock": ("amazon_bedrock_config", "amazonBedrockConfig"),
    "google-cloud-vertex-ai": ("google_cloud_vertex_ai_config", "googleCloudVertexAiConfig"),
    "databricks-model-serving": ("databricks_model_serving_config", "databricksModelServingConfig"),
    "ai21labs": ("ai21labs_config", "ai21labsConfig"),
    "custom": ("custom_provider_config", "customProviderConfig"),
    "palm": ("palm_config", "palmConfig"),
}
"""provider → (Python attribute, camelCase field) of its config block."""
