"""API keys: format, hashing, constant-time check, the Secret manifest, the directory loader and revocation by
deleting the file (measured)."""

from __future__ import annotations

import asyncio
import hmac
import logging
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from modelgate_proxy.exchange import Principal
from modelgate_proxy.stages.identity.apikey_files import ApiKeyDirectory, load, record_from_secret
from modelgate_proxy.stages.identity.apikey_mint import mint
from modelgate_proxy.stages.identity.apikeys import (
    ApiKeyAuthenticator,
    ApiKeyStore,
    InvalidApiKeyRecord,
    hash_key,
    key_id_of,
)
from modelgate_proxy.stages.identity.bearer import Credential


def _write(directory: Path, minted_manifest: dict[str, object], name: str) -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(minted_manifest))
    return path


def test_minted_key_format_and_manifest_hold_only_the_hash() -> None:
    minted = mint("alice@example.com", namespace="team-a", groups=["ds", "ml"])
    assert minted.key.startswith("mgk_")
    assert len(minted.key) == 4 + 12 + 1 + 43
    assert key_id_of(minted.key) == minted.key_id
    text = yaml.safe_dump(minted.manifest)
    assert minted.key not in text
    assert minted.key.split("_", 2)[2] not in text
    assert minted.manifest["metadata"]["labels"] == {"serving.modelgate.io/api-key": "true"}
    assert minted.manifest["stringData"]["sha256"] == hash_key(minted.key).hex()
    record = record_from_secret(minted.manifest)
    assert record is not None
    assert record.principal == Principal("user", "alice@example.com", ("ds", "ml"))
    assert mint("a").key != mint("a").key


def test_check_accepts_the_key_and_nothing_near_it() -> None:
    minted = mint("svc-batch", kind="service_principal")
    record = record_from_secret(minted.manifest)
    assert record is not None
    auth = ApiKeyAuthenticator(ApiKeyStore([record]))
    assert auth.check(minted.key) == Principal("service_principal", "svc-batch")
    flipped = minted.key[:-1] + ("A" if minted.key[-1] != "A" else "B")
    other_id = minted.key.replace(minted.key_id, "0" * 12)
    for wrong in (flipped, other_id, minted.key + "x", minted.key[:-1], "mgk_", "", hash_key(minted.key).hex(),
                  minted.manifest["stringData"]["sha256"]):
        assert auth.check(wrong) is None
    assert asyncio.run(auth.authenticate(Credential(minted.key))) is not None


def test_the_hashes_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    minted = mint("alice")
    record = record_from_secret(minted.manifest)
    assert record is not None
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    auth = ApiKeyAuthenticator(ApiKeyStore([record]))
    assert auth.check(minted.key) is not None
    assert auth.check(minted.key[:-2] + "zz") is None
    assert [(len(a), len(b)) for a, b in seen] == [(32, 32), (32, 32)]
    assert all(b == record.sha256 for _, b in seen)


def test_expired_keys_are_refused() -> None:
    soon = datetime.now(UTC) + timedelta(seconds=60)
    minted = mint("alice", expires=soon)
    record = record_from_secret(minted.manifest)
    assert record is not None
    assert record.expires is not None
    assert ApiKeyAuthenticator(ApiKeyStore([record])).check(minted.key) is not None
    later = ApiKeyAuthenticator(ApiKeyStore([record]), clock=lambda: soon.timestamp() + 1)
    assert later.check(minted.key) is None


@pytest.mark.parametrize(("field", "value", "why"), [
    ("principal", "system:admin", "reserved"),
    ("groups", "ds,system:masters", "reserved"),
    ("kind", "admin", "kind"),
    ("sha256", "abc", "sha256"),
    ("id", "XYZ", "id"),
    ("expires", "tomorrow", "expires"),
    ("expires", "2027-01-01T00:00:00", "zone"),
])
def test_invalid_records_are_refused_naming_the_field(field: str, value: str, why: str) -> None:
    manifest = mint("alice").manifest
    manifest["stringData"][field] = value
    with pytest.raises(InvalidApiKeyRecord) as info:
        record_from_secret(manifest)
    assert why in str(info.value)


def test_secret_as_the_api_server_returns_it_base64_data() -> None:
    import base64

    minted = mint("bob", groups=["g"])
    data = {k: base64.b64encode(v.encode()).decode() for k, v in minted.manifest["stringData"].items()}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": "ns",
              "labels": {"serving.modelgate.io/api-key": "true"}}, "data": data}
    record = record_from_secret(secret)
    assert record is not None
    assert record.principal.name == "bob"
    assert record.source == "ns/x"
    unlabelled = {**secret, "metadata": {"name": "x"}}
    assert record_from_secret(unlabelled) is None


def test_directory_loader_skips_bad_files_refuses_duplicates_and_never_logs_keys(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good, dup = mint("alice"), mint("bob")
    _write(tmp_path, good.manifest, "alice.yaml")
    _write(tmp_path, dup.manifest, "bob.yaml")
    _write(tmp_path, dup.manifest, "bob-copy.yml")
    (tmp_path / "broken.yaml").write_text("kind: Secret\nmetadata: {labels: {serving.modelgate.io/api-key: 'true'}}\n"
                                          "stringData: {id: nothex, sha256: x}\n")
    (tmp_path / "garbage.json").write_text("{not yaml: [")
    (tmp_path / "notes.txt").write_text(good.key)  # not a manifest suffix: never read
    both = tmp_path / "multi.yaml"
    extra = mint("carol")
    both.write_text(yaml.safe_dump_all([{"kind": "ConfigMap", "metadata": {}}, extra.manifest]))
    with caplog.at_level(logging.INFO, logger="modelgate.identity"):
        records = {r.principal.name for r in load(tmp_path)}
    assert records == {"alice", "carol"}
    assert "broken.yaml" in caplog.text
    assert "garbage.json" in caplog.text
    assert dup.key_id in caplog.text
    for minted in (good, dup, extra):
        assert minted.key not in caplog.text
        assert minted.manifest["stringData"]["sha256"] not in caplog.text


def test_deleting_a_key_file_revokes_it_within_the_reload_bound(tmp_path: Path) -> None:
    interval = 0.25
    keep, revoke = mint("alice"), mint("bob")
    _write(tmp_path, keep.manifest, "alice.yaml")
    path = _write(tmp_path, revoke.manifest, "bob.yaml")

    async def scenario() -> float:
        directory = ApiKeyDirectory(tmp_path, interval=interval)
        await directory.start()
        auth = ApiKeyAuthenticator(directory.store)
        try:
            assert auth.check(revoke.key) is not None
            added = mint("dave")
            _write(tmp_path, added.manifest, "dave.yaml")
            t0 = time.monotonic()
            while auth.check(added.key) is None:
                assert time.monotonic() - t0 < interval * 4 + 1, "a new key file was not picked up"
                await asyncio.sleep(0.01)
            path.unlink()
            t0 = time.monotonic()
            while auth.check(revoke.key) is not None:
                assert time.monotonic() - t0 < interval * 4 + 1, "a deleted key was still accepted"
                await asyncio.sleep(0.01)
            elapsed = time.monotonic() - t0
            assert auth.check(keep.key) is not None
            return elapsed
        finally:
            await directory.close()

    elapsed = asyncio.run(scenario())
    print(f"API key revoked {elapsed * 1000:.0f} ms after its file was deleted (reload interval {interval} s)")
    assert elapsed <= interval + 1.0


def test_the_whole_directory_vanishing_revokes_everything(tmp_path: Path) -> None:
    root = tmp_path / "keys"
    root.mkdir()
    minted = mint("alice")
    _write(root, minted.manifest, "alice.yaml")

    async def scenario() -> None:
        directory = ApiKeyDirectory(root, interval=0.1)
        await directory.start()
        try:
            auth = ApiKeyAuthenticator(directory.store)
            assert auth.check(minted.key) is not None
            (root / "alice.yaml").unlink()
            root.rmdir()
            await asyncio.sleep(0.5)
            assert auth.check(minted.key) is None
            assert len(directory.store) == 0
        finally:
            await directory.close()

    asyncio.run(scenario())
    with pytest.raises(FileNotFoundError):
        asyncio.run(ApiKeyDirectory(root).start())


def test_api_key_create_prints_the_manifest_on_stdout_and_the_key_once_on_stderr() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "modelgate_proxy", "api-key", "create", "-n", "team-a", "--principal", "alice@example.com",
         "--group", "ds"], capture_output=True, text=True, check=True, timeout=60,
    )
    manifest = yaml.safe_load(out.stdout)
    key = out.stderr.strip().rsplit(" ", 1)[-1]
    assert key.startswith("mgk_")
    assert key not in out.stdout
    assert out.stderr.count(key) == 1
    record = record_from_secret(manifest)
    assert record is not None
    assert ApiKeyAuthenticator(ApiKeyStore([record])).check(key) is not None
    assert manifest["metadata"]["namespace"] == "team-a"
    bad = subprocess.run([sys.executable, "-m", "modelgate_proxy", "api-key", "create", "--principal", "system:x"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert "reserved" in bad.stderr
    assert "mgk_" not in bad.stdout + bad.stderr


def test_api_key_create_writes_a_record_the_directory_loader_accepts(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "modelgate_proxy", "api-key", "create", "--principal", "bot", "--service-principal",
         "--write", str(tmp_path / "keys")], capture_output=True, text=True, check=True, timeout=60,
    )
    key = out.stderr.strip().rsplit(" ", 1)[-1]
    assert out.stdout == ""
    files = list((tmp_path / "keys").iterdir())
    assert [f.name for f in files] == [f"modelgate-api-key-{key.split('_')[1]}.yaml"]  # no temporary file left
    assert key not in files[0].read_text()
    principal = ApiKeyAuthenticator(ApiKeyStore(load(tmp_path / "keys"))).check(key)
    assert principal is not None
    assert (principal.kind, principal.name) == ("service_principal", "bot")
