#!/usr/bin/env bash
# Create or refresh the project's virtualenv (.venv) so that it matches pyproject.toml.
# Re-installs only when pyproject.toml changed since the last successful install (stamp holds its hash).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.modelgate-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys' 2>/dev/null; then
  rm -rf .venv
  "$PY" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "venv: installing modelgate[dev] into .venv" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  echo "$want" > "$stamp"
fi
# The dev package (hack/modelgate_dev: local control plane, make up, CRD writer) is importable in this venv
# only: a .pth entry, never part of the wheel or an image.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
[ "$(cat "$site/modelgate-dev.pth" 2>/dev/null)" = "$PWD/hack" ] || echo "$PWD/hack" > "$site/modelgate-dev.pth"
