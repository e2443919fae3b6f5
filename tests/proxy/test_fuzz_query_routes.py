"""Fuzzing the four query routes with hypothesis (issue 12): seeded, at least 2,000 generated requests per run,
bodies (JSON of every shape, nesting thousands deep, bytes that are not JSON) and headers (content types, random
names and values). No answer may be a 5xx, and every 4xx must be in the error shape of the route it was sent to.
The provider behind the routes is the well-behaved mode of the fault-injecting stand-in."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.standins.faulty_provider import FaultyProvider

from .conftest import FAKE_KEY
from .harness import Proxy, endpoint, openai_entity, run_proxy

CASES = 2200
ROUTES = (
    ("databricks", "/serving-endpoints/chat/invocations", None),
    ("openai", "/serving-endpoints/chat/completions", "chat"),
    ("openai", "/serving-endpoints/completions", "cmpl"),
    ("openai", "/serving-endpoints/embeddings", "emb"),
)
FIELDS = ("messages", "prompt", "input", "model", "stream", "max_tokens", "temperature", "n", "stop",
          "stream_options", "extra_params", "tools", "client_request_id", "usage_context", "logit_bias", "seed")

_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
_scalar = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False), _text)
_json = st.recursive(_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(_text, inner, max_size=4)), max_leaves=12)
_message = st.fixed_dictionaries({}, optional={"role": st.one_of(st.sampled_from(["user", "system", "assistant",
                                                                                  "tool", "x"]), _json),
                                               "content": st.one_of(_text, _json)})
_deep = st.integers(1, 3000).map(lambda d: f"__deep_{d}__")
"""Arrays nested ``d`` deep: a placeholder replaced in the encoded body (see :func:`_encode`)."""
_DEEP = re.compile(rb'"__deep_(\d+)__"')


def _encode(obj: dict[str, Any]) -> bytes:
    """JSON of ``obj`` (integers of any size, as a caller's JSON may have), deep placeholders expanded."""
    raw = json.dumps(obj, ensure_ascii=False).encode()
    return _DEEP.sub(lambda m: b"[" * int(m.group(1)) + b"]" * int(m.group(1)), raw)


def _value(field: str) -> st.SearchStrategy[Any]:
    if field == "messages":
        return st.one_of(st.lists(_message, max_size=3), _json)
    if field == "model":
        return st.one_of(st.sampled_from(["chat", "cmpl", "emb", "nope", ""]), _json)
    if field == "stream":
        return st.one_of(st.booleans(), _json)
    return st.one_of(_json, _deep)


_object = st.dictionaries(st.one_of(st.sampled_from(FIELDS), _text), st.none(), max_size=6).flatmap(
    lambda keys: st.fixed_dictionaries({k: _value(k) for k in keys}))
_raw = st.one_of(st.binary(max_size=200), _text.map(str.encode),
                 st.sampled_from([b"", b"{", b"[]", b"null", b'{"messages": [', b"\xff\xfe", b'{"a":1}{"b":2}']))
_token = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-_!#$%&'*+.^`|~"), min_size=1, max_size=20)
_header_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
                        max_size=60).map(str.strip)
_reserved = {"content-length", "transfer-encoding", "host", "connection", "expect", "upgrade", "te", "trailer"}
_headers = st.dictionaries(_token.filter(lambda n: n.lower() not in _reserved), _header_value, max_size=4)
_content_type = st.one_of(st.none(), st.sampled_from(["application/json", "application/json; charset=utf-8",
                                                     "text/plain", "application/x-www-form-urlencoded",
                                                     "application/vnd.api+json", "", "multipart/form-data"]),
                          _header_value)


@st.composite
def requests(draw: st.DrawFn) -> tuple[int, bytes, dict[str, str]]:
    route = draw(st.integers(0, len(ROUTES) - 1))
    _, _, model = ROUTES[route]
    kind = draw(st.integers(0, 9))
    if kind < 2:
        body = draw(_raw)
    elif kind < 6:
        # A valid request of the route, with parameters of any value beside it.
        field = {"chat": "messages", "cmpl": "prompt", "emb": "input", None: "messages"}[model]
        text = draw(_text)
        obj = {field: [{"role": "user", "content": text}] if field == "messages" else text or "x"}
        obj.update(draw(st.dictionaries(st.sampled_from(FIELDS[4:]), _scalar, max_size=3)))
        if model is not None:
            obj["model"] = model
        if field == "input":
            obj.pop("stream", None)
        body = _encode(obj)
    else:
        obj = draw(_object)
        if model is not None and draw(st.booleans()):
            obj.setdefault("model", model)
        body = _encode(obj)
    headers = draw(_headers)
    content_type = draw(_content_type)
    if content_type is not None:
        headers["content-type"] = content_type
    return route, body, headers


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    with FaultyProvider.running() as fp:
        manifests = [endpoint("chat", [openai_entity(fp.base("ok"))]),
                     endpoint("cmpl", [openai_entity(fp.base("ok"), task="llm/v1/completions", model="m")]),
                     endpoint("emb", [openai_entity(fp.base("ok"), task="llm/v1/embeddings", model="m")])]
        with run_proxy(tmp_path_factory.mktemp("fuzz"), manifests, secrets={"openai": {"api-key": FAKE_KEY}},
                       extra=["--max-body-bytes", "1000000"]) as p:
            yield p


def _check_shape(shape: str, resp: httpx.Response) -> None:
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    if shape == "databricks":
        assert set(body) == {"error_code", "message"}, body
        assert isinstance(body["error_code"], str)
        assert isinstance(body["message"], str)
        assert body["message"]
    else:
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"message", "type", "param", "code"}, body
        assert isinstance(body["error"]["message"], str)
        assert body["error"]["message"]


def test_fuzzed_requests_get_no_5xx_and_the_route_s_error_shape(proxy: Proxy) -> None:
    seen = {"cases": 0, "by_route": [0, 0, 0, 0], "4xx": 0, "2xx": 0}
    with httpx.Client(base_url=proxy.url, timeout=30) as client:

        @seed(20261202)
        @settings(max_examples=CASES, deadline=None, database=None, derandomize=False,
                  suppress_health_check=list(HealthCheck))
        @given(requests())
        def one(case: tuple[int, bytes, dict[str, str]]) -> None:
            route, body, headers = case
            shape, path, _ = ROUTES[route]
            seen["cases"] += 1
            seen["by_route"][route] += 1
            resp = client.post(path, content=body, headers={k: v.encode("latin-1") for k, v in headers.items()})
            assert resp.status_code < 500, (path, body[:300], headers, resp.status_code, resp.text[:300])
            if resp.status_code >= 400:
                seen["4xx"] += 1
                _check_shape(shape, resp)
            else:
                seen["2xx"] += 1
                assert resp.status_code == 200

        one()
    print(f"fuzz: {seen}")
    assert seen["cases"] >= 2000
    assert min(seen["by_route"]) >= 300
    assert seen["2xx"] > 0
    assert seen["4xx"] > 0
