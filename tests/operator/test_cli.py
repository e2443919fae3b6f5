"""The ``modelgate-operator`` command line (without a cluster)."""

from __future__ import annotations

import logging

import pytest

from modelgate_operator import cli, crdgen, settings


def test_crdgen_subcommand_is_the_crd_generator(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["crdgen", "--stdout"]) == 0
    assert capsys.readouterr().out == crdgen.render()
    assert cli.main(["crdgen", "--check"]) == 0


def test_run_requires_a_scope(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["run"])
    assert "--namespace" in capsys.readouterr().err


def test_production_settings() -> None:
    s = settings.operator_settings(settings.RuntimeOptions(peering="modelgate", clusterwide=True))
    assert s.peering.name == "modelgate"
    assert s.peering.mandatory
    assert s.peering.clusterwide
    assert s.watching.server_timeout == 300
    assert s.watching.client_timeout == 330
    assert s.persistence.finalizer == "serving.modelgate.io/finalizer"
    assert not s.posting.enabled
    assert settings.operator_settings(settings.RuntimeOptions()).peering.standalone


def test_log_filter_blanks_plaintext_values() -> None:
    record = logging.LogRecord("kopf", logging.DEBUG, __file__, 1, "body: %r", None, None)
    record.args = ({"openaiApiKeyPlaintext": "sk-LEAK", "data": {"k": "c2stTEVBSw=="}, "name": "x"},)
    assert settings.RedactingFilter().filter(record)
    message = record.getMessage()
    assert "sk-LEAK" not in message
    assert "c2stTEVBSw==" not in message
    assert "'name': 'x'" in message
