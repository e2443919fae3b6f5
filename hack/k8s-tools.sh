#!/usr/bin/env bash
# Build (once) and cache the real Kubernetes binaries the test suite and the local quickstart use:
# etcd, kube-apiserver, kubectl and helm, all compiled from Go modules with pinned versions.
#
#   hack/k8s-tools.sh            # prints the bin directory (building what is missing)
#
# If KUBEBUILDER_ASSETS is set and holds etcd + kube-apiserver (+ kubectl), those are used instead and
# only what is missing there (helm, kubectl) is built.
# Cache: ${MODELGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelgate}/k8s-v$K8S_VERSION/bin.
# A binary is only trusted when its ".ok" stamp exists (written after a successful build and a
# smoke run), so an interrupted or broken build is rebuilt the next time.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.34.4}
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
HELM_VERSION=${HELM_VERSION:-3.19.5}
CACHE=${MODELGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelgate}
BIN="$CACHE/k8s-v$K8S_VERSION/bin"
WORK="$CACHE/k8s-v$K8S_VERSION/src"
mkdir -p "$BIN" "$WORK"

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOWORK=off
log() { echo "k8s-tools: $*" >&2; }

ok() { [ -x "$BIN/$1" ] && [ -f "$BIN/$1.ok" ]; }
stamp() { "$BIN/$1" $2 >/dev/null 2>&1 && touch "$BIN/$1.ok"; }

minor=${K8S_VERSION#1.}; minor=${minor%%.*}
stage_version="v0.${K8S_VERSION#1.}"
ldflags() {
  local l="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    l="$l -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    l="$l -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$l"
}

build_kube_apiserver() {
  local d="$WORK/kube-apiserver"; rm -rf "$d"; mkdir -p "$d"; cd "$d"
  cat > main.go <<'GO'
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() { os.Exit(cli.Run(app.NewAPIServerCommand())) }
GO
  go mod init local.modelgate/kube-apiserver >/dev/null 2>&1
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
  for m in $(awk '$1 ~ /^k8s\.io\// && $2=="v0.0.0" {print $1}' "$gomod"); do
    go mod edit -replace="$m=$m@$stage_version"
  done
  go mod edit -require="k8s.io/kubernetes@v$K8S_VERSION"
  go mod tidy >/dev/null
  go build -trimpath -ldflags "$(ldflags)" -o "$BIN/kube-apiserver" .
}

build_kubectl() {
  local d="$WORK/kubectl"; rm -rf "$d"; mkdir -p "$d"; cd "$d"
  cat > main.go <<'GO'
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/kubectl/pkg/cmd"
)

func main() { os.Exit(cli.Run(cmd.NewDefaultKubectlCommand())) }
GO
  go mod init local.modelgate/kubectl >/dev/null 2>&1
  go mod edit -require="k8s.io/kubectl@$stage_version" -require="k8s.io/component-base@$stage_version" \
    -require="k8s.io/client-go@$stage_version"
  go mod tidy >/dev/null
  go build -trimpath -ldflags "$(ldflags)" -o "$BIN/kubectl" .
}

build_etcd() {
  local d="$WORK/etcd"; rm -rf "$d"; mkdir -p "$d"; cd "$d"
  cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  go mod init local.modelgate/etcd >/dev/null 2>&1
  go mod edit -require="go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  go mod tidy >/dev/null
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" .
}

build_helm() {
  GOBIN="$BIN" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
}

# KUBEBUILDER_ASSETS (setup-envtest layout) wins where it has a binary.
if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  for t in etcd kube-apiserver kubectl; do
    if [ -x "$KUBEBUILDER_ASSETS/$t" ]; then ln -sf "$KUBEBUILDER_ASSETS/$t" "$BIN/$t"; touch "$BIN/$t.ok"; fi
  done
fi

want=("$@"); [ ${#want[@]} -gt 0 ] || want=(etcd kube-apiserver kubectl helm)
for t in "${want[@]}"; do
  if ! ok "$t"; then
    rm -f "$BIN/$t.ok"
    log "building $t (first time only; cached in $BIN)"
    start=$SECONDS
    ( "build_${t//-/_}" ) >&2
    case $t in
      etcd) stamp etcd --version ;;
      kube-apiserver) stamp kube-apiserver --version ;;
      kubectl) stamp kubectl "version --client" ;;
      helm) stamp helm version ;;
    esac
    ok "$t" || { log "$t did not build or does not run"; exit 1; }
    log "built $t in $((SECONDS - start))s"
  fi
done
echo "$BIN"
