"""The reconciler's memory, without a cluster: drift detection by containment, and the Secret digest cache."""

from __future__ import annotations

import hashlib

from modelgate_operator.reconcile import contains
from modelgate_operator.secretcache import SecretCache, digests


def test_contains_ignores_what_the_server_added_but_not_what_we_set() -> None:
    wanted = {"spec": {"replicas": 1, "ports": [{"port": 80, "name": "http"}]}, "metadata": {"labels": {"a": "1"}}}
    live = {
        "spec": {"replicas": 1, "ports": [{"port": 80, "name": "http", "protocol": "TCP"}], "clusterIP": "10.0.0.7"},
        "metadata": {"labels": {"a": "1", "extra": "x"}, "resourceVersion": "9"},
    }
    assert contains(live, wanted)
    assert not contains({**live, "spec": {**live["spec"], "replicas": 5}}, wanted)
    assert not contains({**live, "spec": {**live["spec"], "ports": []}}, wanted)
    assert not contains({"metadata": live["metadata"]}, wanted)
    assert not contains(None, wanted)


def test_secret_cache_holds_digests_and_forgets_deleted_secrets() -> None:
    cache = SecretCache()
    assert cache.get("ns", "s") is None
    cache.update("ns", "s", {"k": "c2stdmFsdWU="})
    got = cache.get("ns", "s")
    assert got == {"k": hashlib.sha256(b"c2stdmFsdWU=").hexdigest()}
    assert "c2stdmFsdWU=" not in repr(got)
    assert got == digests({"k": "c2stdmFsdWU="})  # the same form a GET is reduced to
    cache.update("ns", "s", None)
    assert cache.get("ns", "s") is None
    assert len(cache) == 0


def test_periodic_resync_skips_endpoints_reconciled_recently() -> None:
    from modelgate_operator.kube import Kube
    from modelgate_operator.reconcile import Reconciler
    from modelgate_operator.render import ProxyDefaults

    reconciler = Reconciler(Kube(client=None), ProxyDefaults())  # type: ignore[arg-type]  # no API call here
    reconciler._handled = {("ns", "old"): ("u1", 1), ("ns", "fresh"): ("u2", 1)}
    reconciler._last = {("ns", "old"): 100.0, ("ns", "fresh"): 390.0}
    assert reconciler.due(300.0, now=400.0) == [("ns", "old")]
    assert reconciler.due(300.0, now=700.0) == [("ns", "fresh"), ("ns", "old")]
    reconciler.forget("ns", "old")
    assert reconciler.due(300.0, now=700.0) == [("ns", "fresh")]
