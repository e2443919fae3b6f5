"""Preparing the node: "cannot run here" (exit 3 of the scripts, not root, not Linux) is told apart from a failed
build, which must fail the node tests rather than skip them."""

from __future__ import annotations

import pytest

from modelgate_dev.node import prepare
from tests.plugins import node as plugin


def test_exit_3_means_cannot_run_here_and_other_failures_are_build_failures() -> None:
    with pytest.raises(prepare.NodeUnavailable, match="no apt-get here"):
        prepare._run("script", ["bash", "-c", "echo 'node-packages: no apt-get here' >&2; exit 3"])
    with pytest.raises(prepare.NodeBuildFailed, match=r"(?s)failed \(exit 1\).*go: module not found"):
        prepare._run("script", ["bash", "-c", "echo 'go: module not found' >&2; exit 1"])
    assert prepare._run("script", ["bash", "-c", "echo /bin/dir"]).strip() == "/bin/dir"


def test_the_plugin_skips_when_it_cannot_run_and_fails_on_a_failed_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plugin.SKIP_ENV, "1")
    assert isinstance(plugin._prepare(), plugin.Skip)
    monkeypatch.delenv(plugin.SKIP_ENV)

    def unavailable() -> None:
        raise prepare.NodeUnavailable("the dev node needs root")

    def broken() -> None:
        raise prepare.NodeBuildFailed("building the images failed: docker build exit 1")

    monkeypatch.setattr(plugin, "prepare", unavailable)
    skipped = plugin._prepare()
    assert isinstance(skipped, plugin.Skip)
    assert "needs root" in skipped
    monkeypatch.setattr(plugin, "prepare", broken)
    failed = plugin._prepare()
    assert isinstance(failed, plugin.Failed)
    assert "docker build exit 1" in failed
