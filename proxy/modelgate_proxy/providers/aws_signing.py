"""AWS credentials and SigV4 request signing for Bedrock, both done by botocore.

Credentials come from the endpoint's access keys (resolved per call, so a rotated Secret is used by the next
request) or, with ``instanceProfileArn``, from botocore's default credential chain in the proxy pod (IRSA web
identity, EKS Pod Identity, ECS/EC2 instance metadata, environment). Loading and refreshing chain credentials
may do blocking HTTP calls, so that runs in a worker thread behind one lock; signing itself is a few HMACs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as AwsCredentials
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import BotoCoreError

from ..errors import ProviderConfigError, UpstreamUnavailable
from ..spec.provider_configs import AmazonBedrockConfig
from .base import Credentials

SIGNING_NAME = "bedrock"
"""The SigV4 service name of ``bedrock-runtime`` (its service model's ``signingName``)."""


class AwsCredentialSource:
    """Where an endpoint's AWS credentials come from."""

    def __init__(self, config: AmazonBedrockConfig, credentials: Credentials) -> None:
        self._config = config
        self._credentials = credentials
        self._chain: Any = None
        self._lock = asyncio.Lock()

    async def get(self) -> ReadOnlyCredentials:
        if self._config.instance_profile_arn is None:
            return self._static()
        chain = self._chain
        if chain is not None and not _refresh_needed(chain):
            return chain.get_frozen_credentials()
        async with self._lock:
            if self._chain is None:
                self._chain = await asyncio.to_thread(_load_chain)
            try:
                frozen: ReadOnlyCredentials = await asyncio.to_thread(self._chain.get_frozen_credentials)
            except BotoCoreError as exc:
                raise UpstreamUnavailable(
                    f"amazon-bedrock: refreshing the pod's AWS credentials failed ({type(exc).__name__})"
                ) from None
            return frozen

    def _static(self) -> ReadOnlyCredentials:
        c = self._config
        access_key = self._credentials.resolve(
            c.aws_access_key_id, c.aws_access_key_id_plaintext, field="amazonBedrockConfig.awsAccessKeyId"
        )
        secret_key = self._credentials.resolve(
            c.aws_secret_access_key, c.aws_secret_access_key_plaintext, field="amazonBedrockConfig.awsSecretAccessKey"
        )
        token = None
        if c.aws_session_token is not None or c.aws_session_token_plaintext is not None:
            token = self._credentials.resolve(
                c.aws_session_token, c.aws_session_token_plaintext, field="amazonBedrockConfig.awsSessionToken"
            )
        return ReadOnlyCredentials(access_key, secret_key, token)


def _refresh_needed(chain: Any) -> bool:
    check = getattr(chain, "refresh_needed", None)
    return bool(check()) if callable(check) else False


def _load_chain() -> Any:
    import botocore.session

    try:
        found = botocore.session.get_session().get_credentials()
    except BotoCoreError as exc:
        raise UpstreamUnavailable(f"amazon-bedrock: loading the pod's AWS credentials failed ({type(exc).__name__})") from None
    if found is None:
        raise ProviderConfigError(
            "amazon-bedrock: instanceProfileArn is set but the proxy pod has no AWS credentials "
            "(configure IRSA or EKS Pod Identity for its service account, or use access keys)"
        )
    return found


def sign(
    credentials: ReadOnlyCredentials, region: str, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    """The request headers with SigV4 ``Authorization``, ``X-Amz-Date`` (and ``X-Amz-Security-Token``)."""
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    frozen = AwsCredentials(credentials.access_key, credentials.secret_key, credentials.token)
    SigV4Auth(frozen, SIGNING_NAME, region).add_auth(request)
    return {str(k): str(v) for k, v in request.headers.items()}
