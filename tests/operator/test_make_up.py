"""`make up` end to end (hack/up.sh in a temp state dir): a chat answer through the operator-rendered proxy,
idempotent on a second run, and `make down` leaves no process behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .harness import REPO


def _ours(state: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if str(state) in line]


@pytest.mark.slow
def test_make_up_twice_then_down(k8s_bin: Path, tmp_path: Path) -> None:
    state = tmp_path / "dev"
    env = {**os.environ, "MODELGATE_DEV_DIR": str(state), "MODELGATE_K8S_BIN": str(k8s_bin)}
    try:
        for attempt in (1, 2):
            run = subprocess.run(["bash", "hack/up.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                                 timeout=240)  # fmt: skip
            assert run.returncode == 0, run.stderr[-3000:]
            assert "'Hello from make up!' -> 'You said: Hello from make up!'" in run.stderr
            assert "quickstart   True" in run.stdout
            assert f"export KUBECONFIG={state.resolve()}/kubeconfig" in run.stdout
            assert "make down" in run.stdout
            if attempt == 1:  # the printed Python snippet works as printed, from the repository
                start = next(i for i, line in enumerate(run.stdout.splitlines()) if line.rstrip().endswith("<<'PY'")
                             or "<<'PY'" in line)  # fmt: skip
                lines = run.stdout.splitlines()[start:]
                snippet = "\n".join(lines[: lines.index("PY") + 1])
                assert snippet.lstrip().startswith(".venv/bin/python - <<'PY'"), snippet  # not the system Python
                ran = subprocess.run(["bash", "-c", snippet], cwd=REPO, capture_output=True, text=True, timeout=60)
                assert ran.returncode == 0, ran.stderr[-2000:]
                assert "You said: Hello" in ran.stdout
            if attempt == 2:
                assert "operator: already running" in run.stderr
                assert "control plane: already running" in run.stderr
        key = (state / "fake-openai.key").read_text().strip()
        logs = "".join(p.read_text(errors="replace") for p in state.rglob("*.log"))
        assert key not in logs
        assert key not in (state / "quickstart.yaml").read_text()
    finally:
        subprocess.run(["bash", "hack/down.sh", "--purge"], cwd=REPO, env=env, capture_output=True, timeout=120)
    assert _ours(state) == []
    assert not state.exists()
