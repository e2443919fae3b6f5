"""Convert a Databricks create-serving-endpoint body to a ServingEndpoint manifest, and back: pure conversion of
JSON values beside the spec models (it imports only :mod:`modelgate_proxy.spec`); reading and writing files is
the ``modelgate convert`` command's (:mod:`modelgate_proxy.cli.convert`).

- :mod:`.core`: the annotations, the result types, the name rule, the model walking and validation;
- :mod:`.to_manifest`: Databricks -> ServingEndpoint manifest; :mod:`.to_databricks`: the way back.

Input shapes. The REST body ``{name, config: {served_entities, traffic_config, ...}, ai_gateway, tags, ...}``
(``POST /api/2.0/serving-endpoints``); a bare endpoint config ``{served_entities, traffic_config?,
auto_capture_config?, tags?, rate_limits?}`` (the ``config=`` of MLflow's legacy
``get_deploy_client("databricks").create_endpoint(name=..., config=...)``); or a flat body, ``name`` beside
``served_entities``. In the last two, ``served_entities``, ``served_models``, ``traffic_config`` and
``auto_capture_config`` are the config and every other key is read at the top of the REST body, as MLflow sends
``tags`` and ``rate_limits`` (:func:`rest_body`). Without a ``name`` the endpoint takes ``--name``, else the file
name's stem mapped by the name rule below (said on stderr). Converting back always writes the REST body.

Field names are the same words: Databricks' snake_case becomes camelCase (``openai_api_key`` ->
``openaiApiKey``); ``config.served_entities`` / ``config.traffic_config`` become ``spec.servedEntities`` /
``spec.trafficConfig``; ``ai_gateway``, ``tags`` and ``description`` move under ``spec``; ``name`` becomes
``metadata.name``.

Names. A Databricks endpoint name or secret scope may hold characters a Kubernetes name cannot. One rule maps
both (:func:`kubernetes_name`): lowercase; every character outside ``[a-z0-9-]`` becomes ``-``; runs of ``-``
collapse; leading and trailing ``-`` go; the result is cut to the length limit. A ``-<6 hex>`` hash of the
original is appended when the result is empty, was cut, or equals the mapping of another scope of the same
endpoint while differing from its own original. Secret keys need no mapping (both systems allow
``[A-Za-z0-9._-]``).

Nothing is lost. Originals that changed are kept in annotations, and everything the ServingEndpoint does not
model (``route_optimized``, ``budget_policy_id``, ``email_notifications``, ``config.auto_capture_config``,
a ``bedrock_provider`` spelt in capitals (with a warning), explicit ``null`` s...) is kept in
:data:`EXTRA_ANNOTATION` as ``{"<databricks path>": <original value>}``; converting back restores all of it, so
databricks -> manifest -> databricks gives the (REST) body back unchanged. A served entity mixing
``external_model`` with custom-model fields (``workload_size``...) is refused, as Databricks refuses it.

Legacy rate limits. Databricks' top-level ``rate_limits`` (calls per minute per ``user`` or ``endpoint``) become
``spec.aiGateway.rateLimits`` (the same semantics) when ``ai_gateway.rate_limits`` is absent; the annotation
records the move (``"$moved"``) and converting back writes them at the top level again. When both are set,
ai_gateway's are enforced and the legacy ones are only kept in the annotation (with a warning).
"""

from __future__ import annotations

from .core import (
    EXTRA_ANNOTATION,
    NAME_ANNOTATION,
    OUR_ANNOTATIONS,
    SCOPES_ANNOTATION,
    ConversionError,
    ConversionResult,
    DatabricksConversion,
    Direction,
    RequiredSecret,
    Shape,
    detect_direction,
    kubernetes_name,
    map_scopes,
    validate_manifest,
)
from .to_databricks import convert_manifest, manifest_to_databricks
from .to_manifest import databricks_to_manifest, input_shape, rest_body

__all__ = [
    "EXTRA_ANNOTATION",
    "NAME_ANNOTATION",
    "OUR_ANNOTATIONS",
    "SCOPES_ANNOTATION",
    "ConversionError",
    "ConversionResult",
    "DatabricksConversion",
    "Direction",
    "RequiredSecret",
    "Shape",
    "convert_manifest",
    "databricks_to_manifest",
    "detect_direction",
    "input_shape",
    "kubernetes_name",
    "manifest_to_databricks",
    "map_scopes",
    "rest_body",
    "validate_manifest",
]
