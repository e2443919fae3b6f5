#!/usr/bin/env bash
# `make down`: stop what hack/up.sh started (provider stand-in, the node: pods, kubelet, containerd,
# controllers; the control plane) and restore the host (mounts, bridge, cgroups, iptables chains, sysctls).
# --purge also deletes the state dir (.dev/).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${MODELGATE_DEV_DIR:-.dev}
PY=${PYTHON:-.venv/bin/python}; [ -x "$PY" ] || PY=python3
export PYTHONPATH="$PWD/hack:$PWD/operator:$PWD/proxy${PYTHONPATH:+:$PYTHONPATH}"
exec "$PY" -m modelgate_dev.localdev down --dir "$DIR" "$@"
