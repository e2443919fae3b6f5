"""The chart's rate-limit Redis (``rateLimitRedis``): off by default; an existing Secret is named to the operator;
``deploy.enabled`` renders a small Redis (Deployment + Service) and its Secret, which the real API server accepts."""

from __future__ import annotations

import base64

import yaml

from modelgate_dev.devcluster import DevCluster

from .helmtool import Doc, Helm, container, find, one

NS = "modelgate-system"


def _args(docs: list[Doc]) -> list[str]:
    return list(container(one(docs, "Deployment", "mg-modelgate"))["args"])


def test_no_redis_by_default(helm: Helm) -> None:
    docs = helm.template()
    assert not [a for a in _args(docs) if a.startswith("--redis")]
    assert find(docs, "Deployment", "mg-modelgate-redis") == []


def test_an_existing_secret_is_named_to_the_operator(helm: Helm) -> None:
    docs = helm.template({"rateLimitRedis.secretName": "shared-redis", "rateLimitRedis.passwordKey": "pw"})
    assert _args(docs)[-2:] == ["--redis-secret=shared-redis", "--redis-password-key=pw"]
    assert find(docs, "Deployment", "mg-modelgate-redis") == []


def test_deployed_redis_is_rendered_and_accepted_by_the_api_server(helm: Helm, k8s: DevCluster) -> None:
    docs = helm.template({"rateLimitRedis.deploy.enabled": True, "rateLimitRedis.deploy.password": "pw-123"})
    assert "--redis-secret=mg-modelgate-redis" in _args(docs)
    secret = one(docs, "Secret", "mg-modelgate-redis", NS)
    assert base64.b64decode(secret["data"]["url"]).decode() == f"redis://mg-modelgate-redis.{NS}.svc:6379/0"
    assert base64.b64decode(secret["data"]["password"]).decode() == "pw-123"
    redis = one(docs, "Deployment", "mg-modelgate-redis", NS)
    service = one(docs, "Service", "mg-modelgate-redis", NS)
    operator = one(docs, "Deployment", "mg-modelgate", NS)
    selector = redis["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector
    assert selector != operator["spec"]["selector"]["matchLabels"]  # the operator's selector never picks Redis
    assert not set(operator["spec"]["selector"]["matchLabels"].items()) <= \
        set(redis["spec"]["template"]["metadata"]["labels"].items())
    assert "pw-123" not in yaml.safe_dump(redis)  # the password only through the Secret
    generated = one(helm.template({"rateLimitRedis.deploy.enabled": True}), "Secret", "mg-modelgate-redis", NS)
    assert len(base64.b64decode(generated["data"]["password"])) == 32
    k8s.kubectl("create", "namespace", NS, check=False)
    manifests = yaml.safe_dump_all([secret, service, redis])
    result = k8s.kubectl("apply", "--dry-run=server", "-f", "-", input=manifests)
    assert "created (server dry run)" in result.stdout
