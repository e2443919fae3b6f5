#!/usr/bin/env bash
# The test command (README): lint, types, import contracts, CRD freshness, then pytest against a real
# etcd + kube-apiserver (built once from Go modules by hack/k8s-tools.sh and cached).
set -euo pipefail
cd "$(dirname "$0")/.."
bash hack/venv.sh
bash hack/k8s-tools.sh >/dev/null
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"; ruff check .
echo "== mypy --strict"; mypy
echo "== import-linter"; lint-imports
echo "== CRD is generated from the models"; python -m modelgate_dev.crdgen --check
echo "== pytest"; exec pytest "$@"
