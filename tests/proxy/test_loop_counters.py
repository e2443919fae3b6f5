"""The lock-free counter families of usage tracking (metrics.LoopCounter): exported exactly as a
``prometheus_client`` Counter of the same name, documentation and labels is, series by series."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from modelgate_proxy.metrics import LoopCounter, Metrics


def _without_created_values(text: str) -> str:
    """The ``_created`` samples' values are the series' creation times: equal in form, not in value."""
    return re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", text)


def _count(counter: Counter | LoopCounter) -> None:
    counter.labels("chat", "primary", "input").inc(14)
    counter.labels("chat", "primary", "input").inc(3)
    counter.labels("chat", "primary", "output").inc()
    counter.labels("embed", "e\"1", "output").inc(2.5)  # a value that needs escaping
    counter.labels("gone", "x", "input").inc(7)
    counter.remove("gone", "x", "input")


@pytest.mark.parametrize("render", [generate_latest, generate_openmetrics])
def test_a_loop_counter_renders_as_the_prometheus_counter_does(render) -> None:  # type: ignore[no-untyped-def]
    ours, theirs = CollectorRegistry(auto_describe=False), CollectorRegistry(auto_describe=False)
    _count(LoopCounter("modelgate_usage_tokens", "Tokens.", ["endpoint", "served_entity", "token_type"], ours))
    _count(Counter("modelgate_usage_tokens", "Tokens.", ["endpoint", "served_entity", "token_type"],
                   registry=theirs))
    mine, reference = render(ours).decode(), render(theirs).decode()
    assert 'modelgate_usage_tokens_total{endpoint="chat",served_entity="primary",token_type="input"} 17.0' in mine
    assert "gone" not in mine
    assert _without_created_values(mine) == _without_created_values(reference)


def test_a_loop_counter_checks_the_label_count_and_keeps_one_series_per_label_set() -> None:
    counter = LoopCounter("c", "C.", ["a", "b"], CollectorRegistry())
    with pytest.raises(ValueError):
        counter.labels("only-one")
    assert counter.labels("x", "y") is counter.labels("x", "y")
    counter.remove("not", "there")  # removing an unknown series is no error
    counter.labels("x", "y").inc(2)
    [family] = counter.collect()
    assert [(s.name, s.labels, s.value) for s in family.samples if s.name == "c_total"] == [
        ("c_total", {"a": "x", "b": "y"}, 2.0)]


def test_the_app_exports_usage_tracking_counters_under_their_names() -> None:
    metrics = Metrics()
    metrics.usage_tokens.labels("chat", "primary", "output").inc(29)
    principals = metrics.principal_usage(2)
    principals.record("chat", "user", "a@example.com", 10, 5)
    text = metrics.render().decode()
    assert 'modelgate_usage_tokens_total{endpoint="chat",served_entity="primary",token_type="output"} 29.0' in text
    assert ('modelgate_principal_requests_total{endpoint="chat",principal="a@example.com",principal_type="user"} 1.0'
            in text)
    assert ('modelgate_principal_tokens_total{endpoint="chat",principal="a@example.com",principal_type="user",'
            'token_type="input"} 10.0') in text
    assert "# TYPE modelgate_principal_tokens_total counter" in text
