"""Manifest loading, credential files, and `modelgate serve` as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from modelgate_proxy.cli import build_parser, main
from modelgate_proxy.cli.manifests import ConfigError, load_endpoints
from modelgate_proxy.credentials import FileCredentials
from modelgate_proxy.errors import ProviderConfigError
from tests.standins.openai_api import OpenAIStandIn
from tests.standins.server import free_port, serve_app

from .harness import endpoint, openai_entity, write_secret
from .serve_process import wait_until_answering

ROOT = Path(__file__).resolve().parents[2]


def test_several_documents_and_files(tmp_path: Path) -> None:
    one = tmp_path / "one.yaml"
    one.write_text(yaml.safe_dump_all([endpoint("a", [openai_entity("http://x")]), None,
                                       endpoint("b", [openai_entity("http://x")])]))
    two = tmp_path / "two.yaml"
    two.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List",
                                   "items": [endpoint("c", [openai_entity("http://x")])]}))
    assert [e.name for e in load_endpoints([one, two])] == ["a", "b", "c"]
    with pytest.raises(ConfigError, match="also defined"):
        load_endpoints([one, one])


def test_invalid_manifest_names_the_field_not_the_value(tmp_path: Path) -> None:
    bad = endpoint("a", [openai_entity("http://x", key="sk-secret-value-123")])
    bad["spec"]["servedEntities"][0]["externalModel"]["openaiConfig"]["openaiApiKey"] = "not a reference"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError) as info:
        load_endpoints([path])
    assert "openaiConfig" in str(info.value)
    assert "sk-secret-value-123" not in str(info.value)
    path.write_text("a: [1")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_endpoints([path])


def test_file_credentials(tmp_path: Path) -> None:
    creds = FileCredentials(tmp_path)
    write_secret(tmp_path, "s", "k", "v1\n")
    assert creds.resolve("{{secrets/s/k}}", None, field="f") == "v1"
    write_secret(tmp_path, "s", "k", "v2")
    assert creds.resolve("{{secrets/s/k}}", None, field="f") == "v2"
    assert creds.resolve(None, "inline", field="f") == "inline"
    with pytest.raises(ProviderConfigError, match=r"\{\{secrets/s/other\}\} for f"):
        creds.resolve("{{secrets/s/other}}", None, field="f")
    with pytest.raises(ProviderConfigError, match="no secrets directory"):
        FileCredentials(None).resolve("{{secrets/s/k}}", None, field="f")


def test_cli_help_lists_serve_and_convert(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "serve" in out
    args = build_parser().parse_args(["serve", "-f", "a.yaml", "-f", "b.yaml", "--workers", "2"])
    assert args.files == ["a.yaml", "b.yaml"]
    assert args.workers == 2
    assert args.port == 8080


def test_serve_rejects_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert main(["serve", "-f", str(path), "--no-auth"]) == 2
    assert "no ServingEndpoint" in capsys.readouterr().err


@pytest.mark.parametrize("workers", [1, 2])
def test_modelgate_serve_process(tmp_path: Path, workers: int) -> None:
    standin = OpenAIStandIn(api_key="sk-proc")
    with serve_app(standin.app) as url:
        path = tmp_path / "endpoint.yaml"
        path.write_text(yaml.safe_dump(endpoint("chat", [openai_entity(url)])))
        write_secret(tmp_path / "secrets", "openai", "api-key", "sk-proc")
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT / "proxy")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelgate_proxy", "serve", "-f", str(path), "--secrets-dir",
             str(tmp_path / "secrets"), "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
             "--log-level", "warning", "--no-auth"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        try:
            wait_until_answering(proc, f"http://127.0.0.1:{port}")
            r = httpx.post(f"http://127.0.0.1:{port}/serving-endpoints/chat/invocations",
                           json={"messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 200
            assert r.json()["choices"][0]["message"]["content"] == "You said: hi"
        finally:
            proc.terminate()
            proc.wait(timeout=15)
        assert proc.stdout is not None
        assert "not ready" not in proc.stdout.read().decode(errors="replace")  # every credential is readable


def test_modelgate_serve_says_at_start_up_that_a_credential_file_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "endpoint.yaml"
    path.write_text(yaml.safe_dump(endpoint("chat", [openai_entity("http://127.0.0.1:9")])))
    (tmp_path / "secrets").mkdir()  # no openai/api-key file in it
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "proxy")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelgate_proxy", "serve", "-f", str(path), "--secrets-dir", str(tmp_path / "secrets"),
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-auth"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        # started (it serves /healthz), before any request to the endpoint
        wait_until_answering(proc, f"http://127.0.0.1:{port}", "/healthz")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    assert proc.stdout is not None
    out = proc.stdout.read().decode(errors="replace")
    missing = tmp_path / "secrets" / "openai" / "api-key"
    assert "WARNING modelgate: not ready: endpoint 'chat': the credential {{secrets/openai/api-key}}" in out, out
    assert f"no file {missing}" in out
