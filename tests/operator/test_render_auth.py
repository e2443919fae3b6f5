"""Rendering an endpoint's authentication (pure, no cluster): the AuthConfig the proxy reads, its flags, its pod
identity and the API-key RBAC; the endpoint's setting over the operator's defaults; the status it reports."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from modelgate_operator import identity_wiring, render, render_auth
from modelgate_operator.render import Owner, ProxyDefaults
from modelgate_operator.render_auth import AuthDefaults
from modelgate_operator.reviews_binding import BindingProblem
from modelgate_proxy.spec import OidcProvider, SecretRef, ServingEndpointSpec
from modelgate_proxy.stages.identity.auth_config import AuthConfig

from .samples import two_entities

OWNER = Owner(name="chat", namespace="team-a", uid="0000-1111")
SENTINEL = "sk-SENTINEL-auth-render-19c2"
REF = SecretRef("openai-creds", "api-key")


def _render(authentication: dict[str, Any] | None = None, defaults: AuthDefaults | None = None) -> render.Children:
    body = two_entities(plaintext=SENTINEL)
    if authentication is not None:
        body["proxy"] = {"authentication": authentication}
    spec = ServingEndpointSpec.model_validate(body)
    return render.render(OWNER, spec, {REF: "b2xk"}, ProxyDefaults(auth=defaults or AuthDefaults()))


def _pod(children: render.Children) -> dict[str, Any]:
    return dict(children.deployment["spec"]["template"]["spec"])


def _command(children: render.Children) -> list[str]:
    return list(_pod(children)["containers"][0]["command"])


def test_default_is_bearer_with_a_valid_auth_config_and_no_secret_in_the_config_map() -> None:
    children = _render()
    text = children.config_map["data"][render_auth.AUTH_KEY]
    assert SENTINEL not in text
    assert SENTINEL not in str(children.config_map)
    doc = yaml.safe_load(text)
    config = AuthConfig.model_validate(doc)  # what `modelgate serve --auth-config` accepts
    assert (config.mode, config.authorize) == ("bearer", "rbac")
    assert config.kubernetes is not None
    assert config.kubernetes.audience == render_auth.DEFAULT_AUDIENCE
    assert config.api_key_secrets is not None
    assert config.api_key_secrets.namespace == "team-a"
    assert config.oidc is None
    command = _command(children)
    assert command[command.index("--auth-config") + 1] == render_auth.AUTH_PATH
    assert "--no-auth" not in command
    mounts = {m["mountPath"]: m for m in _pod(children)["containers"][0]["volumeMounts"]}
    assert mounts[render_auth.AUTH_PATH]["subPath"] == render_auth.AUTH_KEY
    assert mounts[render_auth.TOKEN_DIR]["readOnly"] is True


def test_bearer_pod_runs_as_the_namespace_service_account_with_a_token_for_the_api_server() -> None:
    children = _render()
    pod = _pod(children)
    assert pod["serviceAccountName"] == render_auth.SERVICE_ACCOUNT
    assert pod["automountServiceAccountToken"] is False  # only the projected volume below
    volume = next(v for v in pod["volumes"] if v["name"] == "kube-api-access")
    sources = volume["projected"]["sources"]
    token = sources[0]["serviceAccountToken"]
    assert "audience" not in token  # the API server's own audience: it is for calling the reviews
    assert token["path"] == "token"
    assert token["expirationSeconds"] == 3600
    assert sources[1]["configMap"]["items"] == [{"key": "ca.crt", "path": "ca.crt"}]
    assert children.service_account["metadata"] == {
        "name": "modelgate-proxy", "namespace": "team-a", "labels": children.service_account["metadata"]["labels"]}
    assert "ownerReferences" not in children.service_account["metadata"]  # shared by the namespace's proxies


def test_api_keys_give_an_owned_role_reading_secrets_of_the_namespace_only() -> None:
    role, binding = _render().api_keys_rbac
    assert role["kind"] == "Role"
    assert role["metadata"]["namespace"] == "team-a"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}]
    assert role["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "modelgate-proxy", "namespace": "team-a"}]
    off = _render({"apiKeys": False})
    assert off.api_keys_rbac == []
    assert "api_key_secrets" not in yaml.safe_load(off.config_map["data"][render_auth.AUTH_KEY])
    assert render_auth.api_keys_name(render.child_name("x" * 63)).endswith("-api-keys")
    assert len(render_auth.api_keys_name(render.child_name("x" * 63))) <= 63


def test_none_is_no_auth_with_no_token_and_no_rbac() -> None:
    children = _render({"mode": "none"})
    assert "--no-auth" in _command(children)
    assert "--auth-config" not in _command(children)
    assert render_auth.AUTH_KEY not in children.config_map["data"]
    assert not [v for v in _pod(children)["volumes"] if v["name"] == "kube-api-access"]
    assert children.api_keys_rbac == []
    assert render_auth.status(children.auth) == {"mode": "none", "open": True, "audience": None, "apiKeys": None,
                                                 "oidcIssuer": None}  # fmt: skip
    check = identity_wiring.check(children.auth, None)
    assert check is not None
    assert (check.status, check.reason) == ("False", "AuthenticationDisabled")


def test_trusted_header_renders_the_header_flags_and_needs_a_header() -> None:
    children = _render({"mode": "trusted-header", "trustedHeader": {"userHeader": "X-Forwarded-Email",
                                                                     "groupsHeader": "X-Forwarded-Groups"}})  # fmt: skip
    command = _command(children)
    assert command[command.index("--identity-header") + 1] == "X-Forwarded-Email"
    assert command[command.index("--groups-header") + 1] == "X-Forwarded-Groups"
    assert "--service-principal-header" not in command
    assert "--auth-config" not in command
    assert render_auth.problems(children.auth) == []
    bare = _render({"mode": "trusted-header"})
    assert render_auth.problems(bare.auth)
    assert "userHeader" in render_auth.problems(bare.auth)[0]
    from_defaults = _render({"mode": "trusted-header"}, AuthDefaults(user_header="X-User"))
    assert render_auth.problems(from_defaults.auth) == []


def test_endpoint_settings_override_the_operator_defaults_field_by_field() -> None:
    issuer = OidcProvider.model_validate({"issuer": "https://login.example.com", "audience": "mg",
                                          "usernameClaim": "email"})  # fmt: skip
    defaults = AuthDefaults(mode="none", audience="corp/aud", api_keys=False, oidc=issuer)
    assert _render(None, defaults).auth.mode == "none"
    children = _render({"mode": "bearer", "audience": "team-a/chat"}, defaults)
    doc = yaml.safe_load(children.config_map["data"][render_auth.AUTH_KEY])
    assert doc["kubernetes"] == {"audience": "team-a/chat"}
    assert doc["oidc"] == {"issuer": "https://login.example.com", "audience": "mg", "username_claim": "email"}
    assert "api_key_secrets" not in doc
    AuthConfig.model_validate(doc)
    assert render_auth.status(children.auth) == {"mode": "bearer", "open": False, "audience": "team-a/chat",
                                                 "apiKeys": False, "oidcIssuer": "https://login.example.com"}  # fmt: skip


def test_mode_change_rolls_the_pods() -> None:
    assert _render().checksum != _render({"mode": "none"}).checksum
    assert _render().checksum != _render({"audience": "other"}).checksum
    empty = _render({})  # the same effective settings: the same auth.yaml and flags
    assert empty.config_map["data"][render_auth.AUTH_KEY] == _render().config_map["data"][render_auth.AUTH_KEY]
    assert _command(empty) == _command(_render())


def test_authenticated_condition_reports_a_binding_problem() -> None:
    auth = _render().auth
    ok = identity_wiring.check(auth, None)
    assert ok is not None
    assert ok.status == "True"
    assert render_auth.DEFAULT_AUDIENCE in ok.message
    bad = identity_wiring.check(auth, BindingProblem("ReviewsBindingMissing", "gone"))
    assert bad is not None
    assert (bad.status, bad.reason) == ("False", "ReviewsBindingMissing")
    assert identity_wiring.check(None, None) is None


@pytest.mark.parametrize("bad", [{"mode": "open"}, {"oidc": {"issuer": "http://login.example.com", "audience": "a"}},
                                 {"trustedHeader": {"userHeader": "X Bad"}}, {"audiences": "x"}])
def test_the_spec_refuses_settings_that_cannot_work(bad: dict[str, Any]) -> None:
    body = two_entities()
    body["proxy"] = {"authentication": bad}
    with pytest.raises(ValueError):
        ServingEndpointSpec.model_validate(body)
