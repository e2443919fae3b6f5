#!/usr/bin/env bash
# `make up`: modelgate end to end on this machine, on a real single-node cluster. Installs/builds what is
# missing (Debian packages, Kubernetes binaries incl. kubelet, the images), starts (or reuses) the dev
# cluster with its node in .dev/, runs a local OpenAI-compatible provider stand-in, installs the chart with
# helm (the operator runs as a pod), applies the ServingEndpoint `quickstart`, waits until its proxy pod is
# Ready and sends one chat request through it. Idempotent. Stop with `make down`. Needs root (containerd,
# kubelet, the CNI bridge); see docs/dev-cluster.md.
#   MODELGATE_DEV_DIR  state dir (default: .dev)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${MODELGATE_DEV_DIR:-.dev}
bash hack/venv.sh
export PYTHONPATH="$PWD/hack:$PWD/operator:$PWD/proxy${PYTHONPATH:+:$PYTHONPATH}"
exec .venv/bin/python -m modelgate_dev.localdev up --dir "$DIR"
