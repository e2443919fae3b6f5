#!/usr/bin/env bash
# Start (or reuse) the long-running local dev control plane (etcd + kube-apiserver) in .dev/, apply
# crds/ and samples/, and print how to use it. Stop it with hack/down.sh (add --purge to wipe .dev/).
#   MODELGATE_DEV_DIR  state dir (default: .dev)     PYTHON  interpreter (default: .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${MODELGATE_DEV_DIR:-.dev}
PY=${PYTHON:-.venv/bin/python}; [ -x "$PY" ] || PY=python3
export PYTHONPATH="$PWD/operator:$PWD/proxy${PYTHONPATH:+:$PYTHONPATH}"

"$PY" -m modelgate_operator.devcluster up --dir "$DIR" >&2
KUBECONFIG="$(cd "$DIR" && pwd)/kubeconfig"; export KUBECONFIG
KUBECTL="$DIR/bin/kubectl"

shopt -s nullglob
crds=(crds/*.yaml)
if [ ${#crds[@]} -gt 0 ]; then
  echo "applying ${crds[*]}" >&2
  "$KUBECTL" apply --server-side --force-conflicts $(printf -- '-f %s ' "${crds[@]}") -o name \
    | grep '^customresourcedefinition' | xargs -r "$KUBECTL" wait --for=condition=Established --timeout=60s >&2
fi
samples=(samples/*.yaml samples/*.yml samples/*.json)
if [ ${#samples[@]} -gt 0 ]; then
  echo "applying ${samples[*]}" >&2
  "$KUBECTL" apply $(printf -- '-f %s ' "${samples[@]}") >&2
fi

echo >&2
"$KUBECTL" get servingendpoints --all-namespaces 2>&1 || echo "(no ServingEndpoint CRD installed yet: crds/ is empty)" >&2

cat >&2 <<EOF

Dev cluster is up. Point kubectl (and kopf / the operator) at it with:
  export KUBECONFIG=$KUBECONFIG
  export PATH=$PWD/$DIR/bin:\$PATH       # the matching kubectl (and helm)
Logs: $DIR/logs/   Stop: hack/down.sh   (hack/down.sh --purge also deletes $DIR/)
EOF
