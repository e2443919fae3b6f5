"""`make up` end to end (hack/up.sh in a temp state dir): the chart installed with helm (the operator as a
pod), a chat answer through the real proxy pod with the minted API key (authentication on: 401 without it),
idempotent on a second run; `make down` leaves no process, mount, network device, iptables chain, cgroup or changed
sysctl behind."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from modelgate_dev.node import host
from modelgate_dev.node.layout import CGROUP_NAMES
from tests.plugins.node import node_bin_dir

REPO = Path(__file__).resolve().parents[2]


def _kubectl(state: Path, *args: str) -> str:
    cp = state / "control-plane"
    return subprocess.run([str(cp / "bin" / "kubectl"), f"--kubeconfig={cp / 'kubeconfig'}", *args],
                          capture_output=True, text=True, check=True, timeout=30).stdout  # fmt: skip


def _ours(state: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in out.splitlines() if str(state) in line]


@pytest.mark.node
@pytest.mark.slow
def test_make_up_twice_then_down(pytestconfig: pytest.Config, tmp_path: Path) -> None:
    node_bin_dir(pytestconfig)  # skips with the reason when the node cannot run here
    before = host.HostSnapshot.take(CGROUP_NAMES)
    state = tmp_path / "dev"
    env = {**os.environ, "MODELGATE_DEV_DIR": str(state)}
    try:
        for attempt in (1, 2):
            run = subprocess.run(["bash", "hack/up.sh"], cwd=REPO, env=env, capture_output=True, text=True,
                                 timeout=480)  # fmt: skip
            assert run.returncode == 0, run.stderr[-3000:]
            assert "'Hello from make up!' -> 'You said: Hello from make up!'" in run.stderr
            assert "operator: helm release modelgate in modelgate-system, pod Ready" in run.stderr
            assert "quickstart   True" in run.stdout
            assert f"export KUBECONFIG={state.resolve()}/control-plane/kubeconfig" in run.stdout
            assert "make down" in run.stdout
            assert "authentication: mode bearer, open: false, API keys: true" in run.stderr
            if attempt == 1:  # the printed Python snippet works as printed, from the repository
                lines = run.stdout.splitlines()
                start = next(i for i, line in enumerate(lines) if "<<'PY'" in line)
                snippet = "\n".join(lines[start : lines.index("PY", start) + 1])
                first = snippet.lstrip().split("\n", 1)[0]
                assert " .venv/bin/python - <<'PY'" in first, snippet
                assert "MODELGATE_API_KEY=$(cat " in first, snippet
                assert first.startswith("MODELGATE_API_KEY="), snippet  # the key from its file; not the system Python
                ran = subprocess.run(["bash", "-c", snippet], cwd=REPO, capture_output=True, text=True, timeout=60)
                assert ran.returncode == 0, ran.stderr[-2000:]
                assert "You said: Hello" in ran.stdout
                status = _kubectl(state, "get", "se", "quickstart", "-o", "jsonpath={.status.authentication}")
                assert json.loads(status) == {"mode": "bearer", "open": False, "audience": "modelgate.io/proxy",
                                              "apiKeys": True}  # fmt: skip
                url = next(w for w in run.stdout.split() if w.endswith("/serving-endpoints/quickstart/invocations"))
                body = '{"messages": [{"role": "user", "content": "Hello"}]}'  # a valid query, but no/a wrong key
                for header in ([], ["-H", "Authorization: Bearer mg-not-a-key"]):  # no key, a wrong key: 401
                    code = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--noproxy", "*",
                                           url, "-H", "Content-Type: application/json", *header, "-d", body],
                                          capture_output=True, text=True, timeout=30).stdout  # fmt: skip
                    assert code == "401", (header, code)
                # the workspace gateway: the same chat on one URL with the printed DATABRICKS_* variables
                assert "'Hello from make up!' -> 'You said: Hello from make up!'" in run.stderr.split(
                    "chat through the workspace gateway:", 1)[1].split("\n", 1)[0]
                export = next(line for line in lines if "export DATABRICKS_HOST=" in line).strip()
                start = next(i for i, line in enumerate(lines) if "<<'PY'" in line and "OpenAI client on the workspace" in line)
                gw_snippet = "\n".join([export, *lines[start : lines.index("PY", start) + 1]])
                ran = subprocess.run(["bash", "-c", gw_snippet], cwd=REPO, capture_output=True, text=True, timeout=60)
                assert ran.returncode == 0, ran.stderr[-2000:]
                assert "You said: Hello" in ran.stdout
                listed = subprocess.run(["bash", "-c", f"{export}; curl -s --noproxy '*' $DATABRICKS_HOST/api/2.0/"
                                         "serving-endpoints -H \"Authorization: Bearer $DATABRICKS_TOKEN\""],
                                        capture_output=True, text=True, timeout=30)  # fmt: skip
                assert [e["name"] for e in json.loads(listed.stdout)["endpoints"]] == ["quickstart"], listed.stdout
                unauthenticated = subprocess.run(["bash", "-c", f"{export}; curl -s -o /dev/null -w '%{{http_code}}' "
                                                  "--noproxy '*' $DATABRICKS_HOST/api/2.0/serving-endpoints"],
                                                 capture_output=True, text=True, timeout=30).stdout  # fmt: skip
                assert unauthenticated == "401"
                assert (state / "gateway-token").stat().st_mode & 0o077 == 0
            if attempt == 2:
                assert "cluster: already running" in run.stderr
                assert "provider stand-in: already running" in run.stderr
        key = (state / "fake-openai.key").read_text().strip()
        logs = "".join(p.read_text(errors="replace") for p in state.rglob("*.log"))
        assert key not in logs
        assert key not in (state / "quickstart.yaml").read_text()
    finally:
        down = subprocess.run(["bash", "hack/down.sh", "--purge"], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=180)  # fmt: skip
    assert "host restored" in down.stderr, down.stderr[-3000:]
    assert _ours(state) == []
    assert not state.exists()
    assert before.leftovers(CGROUP_NAMES) == []
