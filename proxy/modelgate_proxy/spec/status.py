"""The observed state of a ServingEndpoint, written by the operator."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .spec_model import SpecModel


class Condition(SpecModel):
    """A condition as in the Kubernetes API conventions (``metav1.Condition``)."""

    type: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=316)]
    """Ready, ConfigValid, SecretsResolved or ProxyAvailable."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: Annotated[str, Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)]
    """A CamelCase reason, e.g. SecretNotFound."""
    message: Annotated[str, Field(max_length=32768)] = ""
    """What it means for a person, e.g. which Secret reference is missing."""
    last_transition_time: Annotated[str, Field(max_length=64, json_schema_extra={"format": "date-time"})]
    """When the status last changed (RFC 3339)."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The .metadata.generation this condition was computed for."""


class EndpointState(SpecModel):
    """Databricks-style endpoint state."""

    ready: Literal["READY", "NOT_READY"]
    """READY when every served entity can serve."""
    config_update: Literal["NOT_UPDATING", "IN_PROGRESS", "UPDATE_FAILED", "UPDATE_CANCELED"]
    """Whether a configuration change is being rolled out, or failed."""


class EntityState(SpecModel):
    """Databricks-style served-entity state."""

    deployment: Literal[
        "DEPLOYMENT_CREATING", "DEPLOYMENT_READY", "DEPLOYMENT_FAILED", "DEPLOYMENT_ABORTED", "DEPLOYMENT_RECOVERING"
    ]
    """The entity's deployment state."""
    deployment_state_message: Annotated[str, Field(max_length=4096)] = ""
    """Why, when not ready."""


class ServedEntityStatus(SpecModel):
    """The state of one served entity."""

    name: Annotated[str, Field(max_length=128)]
    """The served entity's (effective) name."""
    provider: Annotated[str, Field(max_length=64)] | None = None
    """Its provider."""
    model: Annotated[str, Field(max_length=256)] | None = None
    """Its external model name."""
    traffic_percentage: Annotated[int, Field(ge=0, le=100)] | None = None
    """Its share of first-choice traffic."""
    state: EntityState
    """Its state."""


class AuthenticationStatus(SpecModel):
    """How the endpoint's callers are authenticated, as the operator configured its proxy (never a secret)."""

    mode: Literal["bearer", "trusted-header", "none"]
    """The effective mode (the endpoint's setting over the operator's default)."""
    open: bool
    """True when anyone who can reach the endpoint may query it (mode ``none``)."""
    audience: Annotated[str, Field(max_length=253)] | None = None
    """Bearer mode: the audience a Kubernetes token must be minted for."""
    api_keys: bool | None = None
    """Bearer mode: whether the API-key Secrets of the namespace are accepted."""
    oidc_issuer: Annotated[str, Field(max_length=2048)] | None = None
    """Bearer mode: the OIDC issuer whose tokens are accepted, if any."""


class ServingEndpointStatus(SpecModel):
    """The observed state of the endpoint."""

    conditions: Annotated[
        list[Condition],
        Field(max_length=16, json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}),
    ] | None = None
    """Ready, and the conditions that explain it: ConfigValid, SecretsResolved, ProxyAvailable; and Authenticated."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The .metadata.generation the operator last acted on."""
    state: EndpointState | None = None
    """Databricks-style state."""
    served_entities: Annotated[list[ServedEntityStatus], Field(max_length=10)] | None = None
    """Per served entity state."""
    endpoint_url: Annotated[str, Field(max_length=2048)] | None = None
    """Where to send requests, e.g. ``http://<service>.<namespace>.svc/serving-endpoints/<name>/invocations``."""
    task: Annotated[str, Field(max_length=64)] | None = None
    """The endpoint's task."""
    entities: Annotated[str, Field(max_length=2048)] | None = None
    """Summary of served entities and their traffic, e.g. ``gpt-4o=90%,claude=10%``."""
    authentication: AuthenticationStatus | None = None
    """How callers are authenticated (``open: true`` when the endpoint is open)."""
