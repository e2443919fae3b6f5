#!/usr/bin/env bash
# Build (once) and cache the real Kubernetes binaries the test suite and the local quickstart use:
# etcd, kube-apiserver, kubectl and helm, all compiled from Go modules with pinned versions, and, for the
# real dev node (hack/modelgate_dev/node), kubelet, kube-controller-manager, kube-scheduler and crictl.
#
#   hack/k8s-tools.sh [tool...]   # prints the bin directory (building what is missing); default: the first four
#   hack/k8s-tools.sh node        # the four plus the node's: kubelet kube-controller-manager kube-scheduler crictl
#
# If KUBEBUILDER_ASSETS is set (setup-envtest layout), its etcd / kube-apiserver / kubectl are used and
# only what is missing there (usually helm) is built; the printed directory is then a per-assets-dir
# directory of symlinks, so the shared cache is never polluted with links to foreign binaries.
# Cache: ${MODELGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelgate}/k8s-v$K8S_VERSION/bin.
# A binary is only trusted when its ".ok" stamp (written after a successful build and a smoke run)
# names the wanted version and recipe, so an interrupted, broken or outdated build is redone. Concurrent invocations
# (parallel test runs, hack/up.sh) serialise on a lock file instead of building twice.
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-1.34.4}
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
HELM_VERSION=${HELM_VERSION:-3.19.5}
CRICTL_VERSION=${CRICTL_VERSION:-1.34.0}
CACHE=${MODELGATE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/modelgate}
ROOT="$CACHE/k8s-v$K8S_VERSION"
BIN="$ROOT/bin"
WORK="$ROOT/src"
mkdir -p "$BIN" "$WORK"

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOWORK=off
log() { echo "k8s-tools: $*" >&2; }

# Bump RECIPE when a build recipe changes: stamps from older recipes / other versions trigger a rebuild.
RECIPE=2
stamp_text() {
  case $1 in
    etcd) echo "etcd v$ETCD_VERSION recipe $RECIPE" ;;
    helm) echo "helm v$HELM_VERSION k8s 1.$minor recipe $RECIPE" ;;
    crictl) echo "crictl v$CRICTL_VERSION recipe $RECIPE" ;;
    *) echo "$1 v$K8S_VERSION recipe $RECIPE" ;;
  esac
}
ok() { [ -x "$BIN/$1" ] && [ ! -L "$BIN/$1" ] && [ "$(cat "$BIN/$1.ok" 2>/dev/null)" = "$(stamp_text "$1")" ]; }
stamp() { "$BIN/$1" $2 >/dev/null 2>&1 && stamp_text "$1" > "$BIN/$1.ok"; }

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
# Path of a module's go.mod in the module cache (downloads the module if needed).
gomod_of() { go mod download -json "$1" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])'; }
# Copy the upstream main module's `godebug` settings (k/k and kubectl: default=go1.24) into ours, so
# runtime defaults match the released binaries rather than those of the newer local Go toolchain.
copy_godebug() {
  local kv
  for kv in $(awk '/^godebug \(/{b=1;next} b&&/^\)/{b=0} b{print $1} /^godebug [^(]/{print $2}' "$1"); do
    go mod edit -godebug="$kv"
  done
}

# A main module that requires k8s.io/kubernetes at $K8S_VERSION (run inside its directory).
kk_module() {
  go mod init "local.modelgate/$1" >/dev/null 2>&1
  local gomod
  gomod=$(gomod_of "k8s.io/kubernetes@v$K8S_VERSION")
  # k/k requires every staging module at the nonexistent v0.0.0 and replaces it with ./staging;
  # map each one to its published v0.X.Y instead (replace only works in the main module).
  for m in $(awk '$1 ~ /^k8s\.io\// && $2=="v0.0.0" {print $1}' "$gomod"); do
    go mod edit -replace="$m=$m@$stage_version"
  done
  copy_godebug "$gomod"
  go mod edit -require="k8s.io/kubernetes@v$K8S_VERSION"
  go mod tidy >/dev/null
}

# main.go of a k/k component: the upstream cmd/<name>/<file>.go main, importing <app>.<constructor>.
kk_main() {
  local extra=${3:-}
  cat <<GO
package main

import (
	"os"
$extra
	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/$1/app"
)

func main() { os.Exit(cli.Run(app.$2)) }
GO
}

build_kube_apiserver() {
  local d="$WORK/kube-apiserver"; rm -rf "$d"; mkdir -p "$d"; cd "$d"
  kk_main kube-apiserver "NewAPIServerCommand()" > main.go
  kk_module kube-apiserver
  go build -trimpath -ldflags "$(ldflags)" -o "$BIN/kube-apiserver" .
}

# kubelet, kube-controller-manager and kube-scheduler share one module (one `go mod tidy`, one download).
node_module() {
  local d="$WORK/k8s-node"
  [ -f "$d/.tidy-ok" ] && [ "$(cat "$d/.tidy-ok")" = "$(stamp_text node)" ] && { cd "$d"; return; }
  rm -rf "$d"; mkdir -p "$d/kubelet" "$d/kube-controller-manager" "$d/kube-scheduler"; cd "$d"
  kk_main kubelet "NewKubeletCommand(context.Background())" '	"context"' > kubelet/main.go
  kk_main kube-controller-manager "NewControllerManagerCommand()" '	_ "time/tzdata"' > kube-controller-manager/main.go
  kk_main kube-scheduler "NewSchedulerCommand()" > kube-scheduler/main.go
  kk_module k8s-node
  stamp_text node > .tidy-ok
}
build_node_component() { node_module; go build -trimpath -ldflags "$(ldflags)" -o "$BIN/$1" "./$1"; }
build_kubelet() { build_node_component kubelet; }
build_kube_controller_manager() { build_node_component kube-controller-manager; }
build_kube_scheduler() { build_node_component kube-scheduler; }

build_crictl() {
  GOBIN="$BIN" go install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=v$CRICTL_VERSION" \
    "sigs.k8s.io/cri-tools/cmd/crictl@v$CRICTL_VERSION"
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
  copy_godebug "$(gomod_of "k8s.io/kubectl@$stage_version")"
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
  # `go install mod@version` makes helm's own go.mod the main module (its go/godebug apply); the -X
  # k8sVersionMinor flags make `helm template`/`lint` assume 1.$minor instead of the compiled-in 1.20.
  GOBIN="$BIN" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION"
}

CONTROL_PLANE=(etcd kube-apiserver kubectl helm)
NODE=(kubelet kube-controller-manager kube-scheduler crictl)
want=()
for t in "${@:-${CONTROL_PLANE[@]}}"; do
  case $t in
    etcd|kube-apiserver|kubectl|helm|kubelet|kube-controller-manager|kube-scheduler|crictl) want+=("$t") ;;
    node) want+=("${CONTROL_PLANE[@]}" "${NODE[@]}") ;;
    *) log "unknown tool '$t'"; exit 2 ;;
  esac
done

# KUBEBUILDER_ASSETS (setup-envtest layout) wins where it has a binary.
from_assets() {
  case $1 in etcd|kube-apiserver|kubectl) ;; *) return 1 ;; esac
  [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/$1" ]
}

missing=()
for t in "${want[@]}"; do from_assets "$t" || ok "$t" || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v flock >/dev/null; then
    exec 9>"$ROOT/.lock"
    flock -n 9 || { log "waiting for another k8s-tools.sh build to finish ($ROOT/.lock)"; flock 9; }
  fi
  # exit 3: cannot build here at all (callers may skip); any other failure is a failed build
  command -v go >/dev/null || { log "need Go (>= 1.24) on PATH to build ${missing[*]}; or set KUBEBUILDER_ASSETS"; exit 3; }
  for t in "${missing[@]}"; do
    ok "$t" && continue  # built meanwhile by the lock holder
    rm -f "$BIN/$t" "$BIN/$t.ok"
    log "building $t (first time only; cached in $BIN)"
    start=$SECONDS
    ( "build_${t//-/_}" ) >&2 || { log "building $t failed"; exit 1; }
    case $t in
      etcd) stamp etcd --version ;;
      kube-apiserver) stamp kube-apiserver --version ;;
      kubectl) stamp kubectl "version --client" ;;
      helm) stamp helm version ;;
      crictl) stamp crictl --version ;;
      *) stamp "$t" --version ;;
    esac
    ok "$t" || { log "$t did not build or does not run"; exit 1; }
    log "built $t in $((SECONDS - start))s"
  done
fi

if [ -n "${KUBEBUILDER_ASSETS:-}" ]; then
  assets=$(cd "$KUBEBUILDER_ASSETS" && pwd -P)
  out="$ROOT/assets-$(printf %s "$assets" | cksum | cut -d' ' -f1)"
  mkdir -p "$out"
  for t in "${CONTROL_PLANE[@]}" "${NODE[@]}"; do
    if from_assets "$t"; then ln -sfn "$assets/$t" "$out/$t"
    elif ok "$t"; then ln -sfn "$BIN/$t" "$out/$t"
    fi
  done
  echo "$out"
else
  echo "$BIN"
fi
