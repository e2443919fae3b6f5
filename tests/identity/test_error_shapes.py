"""The identity errors are rendered by the proxy's one error mapping, in each route's shape, headers included."""

from __future__ import annotations

import orjson
import pytest

from modelgate_proxy.error_shapes import error_body, error_payload
from modelgate_proxy.errors import GatewayError, IdentityUnavailable, QueryDenied, Unauthenticated


@pytest.mark.parametrize(("err", "status", "code", "openai_type"), [
    (Unauthenticated("the request carries no credential", invalid_token=False), 401, "UNAUTHENTICATED",
     "authentication_error"),
    (QueryDenied("team-a", "chat"), 403, "PERMISSION_DENIED", "permission_error"),
    (IdentityUnavailable("the Kubernetes API server could not be reached"), 503, "TEMPORARILY_UNAVAILABLE",
     "api_error"),
])
def test_each_shape(err: GatewayError, status: int, code: str, openai_type: str) -> None:
    assert err.status == status
    assert error_payload("databricks", err) == {"error_code": code, "message": err.message}
    openai = orjson.loads(error_body("openai", err))
    assert openai["error"]["type"] == openai_type
    assert openai["error"]["message"] == err.message
    assert error_payload("mlflow", err) == {"detail": err.message}


def test_headers_and_messages() -> None:
    assert Unauthenticated("x").headers == {"WWW-Authenticate": 'Bearer realm="modelgate", error="invalid_token"'}
    assert IdentityUnavailable("x").headers == {"Retry-After": "1"}
    denied = QueryDenied("team-a", "chat")
    assert "'chat'" in denied.message
    assert "'team-a'" in denied.message
    assert "query" in denied.message
    assert denied.headers == {}
