"""Pure: what an endpoint's proxy needs for its guardrail judge (docs/guardrails.md, "In a cluster").

- A judge that is another ServingEndpoint ``J`` of the namespace: the proxy the operator renders serves only its
  own endpoint, so ``J``'s manifest goes into the ConfigMap as ``judges.yaml`` (passed with ``--judge-file``: the
  proxy builds ``J`` with its own pipeline and lets only the judges call it, it is never routed). ``J``'s
  credentials stay in Secrets: every inline value is a reference into ``J``'s owned Secret (the one ``J``'s own
  proxy reads), and the pod mounts those keys and ``J``'s referenced Secret keys, nothing else.
- The operator's global judge (``--guardrail-judge``, the chart's ``guardrails.judge``), for endpoints whose spec
  names none: ``--guardrail-judge-*`` options, its ``apiKey`` reference mounted like any other.
- The endpoint's own ``judge.apiKey`` reference: mounted like a provider credential.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelgate_proxy.spec import SecretRef, ServingEndpointSpec, parse_secret_ref
from modelgate_proxy.spec.capabilities import judged_guardrails
from modelgate_proxy.spec.gateway import GuardrailJudge

from .render_config import Manifest, config_text
from .secrets import SecretField

JUDGES_KEY = "judges.yaml"
JUDGES_PATH = f"/etc/modelgate/{JUDGES_KEY}"


@dataclass(frozen=True, slots=True)
class JudgeWiring:
    """What :func:`apply` adds to the children; empty when the endpoint needs no judge wiring."""

    manifests: tuple[Manifest, ...] = ()
    """The judge endpoints' proxy manifests (``judges.yaml``)."""
    fields: tuple[SecretField, ...] = ()
    """Their credentials (and the global judge's), as references only: mounted, folded into the checksum."""
    resolved: dict[SecretRef, str] = field(default_factory=dict)
    """Each of those references' base64 value digest (for the checksum)."""
    args: tuple[str, ...] = ()
    """``--guardrail-judge-*`` options of the global judge, when the endpoint uses it."""

    @property
    def text(self) -> str | None:
        return "---\n".join(config_text(m) for m in self.manifests) if self.manifests else None

    def digest_part(self) -> str:
        return (self.text or "") + " ".join(self.args)


def own_judge(spec: ServingEndpointSpec) -> GuardrailJudge | None:
    gateway = spec.ai_gateway
    return gateway.guardrails.judge if gateway is not None and gateway.guardrails is not None else None


def names_model(judge: GuardrailJudge | None) -> bool:
    return judge is not None and (judge.endpoint is not None or judge.url is not None)


def effective_judge(spec: ServingEndpointSpec, default: GuardrailJudge | None) -> GuardrailJudge | None:
    """The judge deciding the endpoint's ``safety`` / ``validTopics`` (None: it asks for none, or none is named):
    its own when it names a model, else the operator's global one."""
    if not judged_guardrails(spec):
        return None
    own = own_judge(spec)
    if names_model(own):
        return own
    return default if names_model(default) else None


def own_key_fields(spec: ServingEndpointSpec) -> list[SecretField]:
    """The endpoint's own ``aiGateway.guardrails.judge.apiKey`` reference, as a credential field to mount."""
    own = own_judge(spec)
    if own is None or own.api_key is None:
        return []
    return [SecretField(entity="guardrail judge", path=("aiGateway", "guardrails", "judge"), ref_alias="apiKey",
                        plaintext_alias="apiKeyPlaintext", key_path="judge.apiKey",
                        reference=parse_secret_ref(own.api_key))]  # fmt: skip


def global_args(judge: GuardrailJudge) -> tuple[str, ...]:
    """The proxy's ``--guardrail-judge-*`` options for the operator's global judge."""
    named = ("--guardrail-judge-endpoint", judge.endpoint) if judge.endpoint is not None else (
        "--guardrail-judge-url", judge.url or "", "--guardrail-judge-model", judge.model or "")
    key = ("--guardrail-judge-api-key", judge.api_key) if judge.api_key is not None else ()
    return (*named, *key, "--guardrail-judge-timeout", f"{judge.timeout_seconds:g}",
            "--guardrail-judge-failure-policy", judge.failure_policy)


def global_key_field(judge: GuardrailJudge) -> list[SecretField]:
    if judge.api_key is None:
        return []
    return [SecretField(entity="operator's guardrail judge", path=(), ref_alias="apiKey",
                        plaintext_alias="apiKeyPlaintext", key_path="guardrails.judge.apiKey",
                        reference=parse_secret_ref(judge.api_key))]  # fmt: skip


def apply(wiring: JudgeWiring, config_map: Manifest, deployment: Manifest) -> None:
    """Add ``judges.yaml`` and the judge options to the rendered ConfigMap and Deployment (in place)."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    text = wiring.text
    if text is not None:
        config_map["data"][JUDGES_KEY] = text
        for volume in deployment["spec"]["template"]["spec"]["volumes"]:
            if volume["name"] == "config":
                volume["configMap"]["items"].append({"key": JUDGES_KEY, "path": JUDGES_KEY})
        container["volumeMounts"].insert(1, {"name": "config", "mountPath": JUDGES_PATH, "subPath": JUDGES_KEY,
                                             "readOnly": True})  # fmt: skip
        container["command"] += ["--judge-file", JUDGES_PATH]
    container["command"] += list(wiring.args)
