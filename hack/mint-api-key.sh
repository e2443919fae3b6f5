#!/usr/bin/env bash
# Mint a modelgate API key with kubectl and openssl only (no Python), as docs/authentication.md describes:
#   hack/mint-api-key.sh <namespace> <principal> [groups,comma,separated] [user|service_principal]
# Creates the labelled Secret holding the key's SHA-256 (never the key) and prints the key once, on stdout.
set -euo pipefail
ns=${1:?namespace}; principal=${2:?principal}; groups=${3:-}; kind=${4:-user}
id=$(openssl rand -hex 6)
key="mgk_${id}_$(openssl rand -base64 32 | tr '+/' '-_' | tr -d '=\n')"
sha=$(printf %s "$key" | sha256sum | cut -d' ' -f1)
kubectl create secret generic "modelgate-api-key-$id" -n "$ns" --type=serving.modelgate.io/api-key \
  --from-literal=id="$id" --from-literal=sha256="$sha" --from-literal=principal="$principal" \
  --from-literal=kind="$kind" ${groups:+--from-literal=groups="$groups"} -o name >/dev/null
kubectl label secret "modelgate-api-key-$id" -n "$ns" serving.modelgate.io/api-key=true >/dev/null
printf '%s\n' "$key"
