#!/usr/bin/env bash
# `make up`: modelgate end to end on this machine. Starts (or reuses) the local control plane in .dev/,
# installs the CRD, runs the operator, a local OpenAI-compatible provider stand-in and the local kubelet
# (which runs the rendered proxy Deployment as a local process), applies the ServingEndpoint `quickstart`,
# waits for Ready and sends one chat request through the proxy. Idempotent. Stop with `make down`.
#   MODELGATE_DEV_DIR  state dir (default: .dev)
# See hack/modelgate_dev/localdev.py and docs/dev-cluster.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${MODELGATE_DEV_DIR:-.dev}
bash hack/venv.sh
bash hack/k8s-tools.sh >/dev/null
export PYTHONPATH="$PWD/hack:$PWD/operator:$PWD/proxy${PYTHONPATH:+:$PYTHONPATH}"
exec .venv/bin/python -m modelgate_dev.localdev up --dir "$DIR"
