"""The ``modelgate-operator`` command line (without a cluster)."""

from __future__ import annotations

import logging

import pytest

from modelgate_operator import cli, crd, settings


def test_crdgen_subcommand_prints_the_generated_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["crdgen", "--stdout"]) == 0
    assert capsys.readouterr().out == crd.render()
    assert cli.main(["crdgen"]) == 0
    assert capsys.readouterr().out == crd.render()
    with pytest.raises(SystemExit):  # writing into a checkout is the dev tool's job (make crd), not the image's
        cli.main(["crdgen", "--check"])


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


def test_http_client_debug_logs_are_quiet() -> None:
    """Every HTTP package lightkube's transport uses (httpx2 on httpcore2 today) is at WARNING after the operator
    configured logging: their DEBUG/INFO lines would print each request. In a subprocess: kopf.configure changes
    the root logger."""
    import subprocess
    import sys

    code = """
import logging, sys
import httpx2, modelgate_operator.kube
httpx2.AsyncHTTPTransport()  # what Kube.from_env builds: imports the connection pool
from modelgate_operator.settings import configure_logging
configure_logging(json=False)
used = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0].startswith(("httpx", "httpcore"))})
loud = [m for m in used for sub in ("", ".connection", ".http11") if logging.getLogger(m + sub).getEffectiveLevel() < logging.WARNING]
print(used, loud)
sys.exit(1 if loud or "httpcore2" not in used else 0)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
