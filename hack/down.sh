#!/usr/bin/env bash
# Stop the local dev control plane started by hack/up.sh. --purge also deletes its state dir (.dev/).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${MODELGATE_DEV_DIR:-.dev}
PY=${PYTHON:-.venv/bin/python}; [ -x "$PY" ] || PY=python3
export PYTHONPATH="$PWD/operator:$PWD/proxy${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m modelgate_operator.devcluster down --dir "$DIR" "$@"
