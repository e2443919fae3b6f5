#!/usr/bin/env bash
# Install (once) the Debian packages the real dev node needs: containerd + runc (container runtime),
# containernetworking-plugins (the CNI bridge), debootstrap (the locally made base image) and docker.io
# (dockerd, to build the project's Dockerfiles). Already-installed packages are left alone; apt-get update
# runs once, only when something is missing. One progress line per step, with its duration, on stderr.
#
#   hack/node-packages.sh [--check]   # --check: exit 1 (listing what is missing) instead of installing
set -euo pipefail
log() { echo "node-packages: $*" >&2; }
# package -> a file it installs (the check does not trust dpkg alone: a half-removed package has no binary)
declare -A PROBE=(
  [containerd]=/usr/bin/containerd
  [runc]=/usr/sbin/runc
  [containernetworking-plugins]=/usr/lib/cni/bridge
  [debootstrap]=/usr/sbin/debootstrap
  [docker.io]=/usr/sbin/dockerd
)
missing=()
for p in containerd runc containernetworking-plugins debootstrap docker.io; do
  [ -x "${PROBE[$p]}" ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "${1:-}" = --check ]; then log "missing: ${missing[*]}"; exit 1; fi
# exit 3: these packages cannot be had on this machine (callers may skip); any other failure is a failed install
[ "$(id -u)" = 0 ] || { log "need root to install ${missing[*]}"; exit 3; }
command -v apt-get >/dev/null || { log "no apt-get: install ${missing[*]} by hand"; exit 3; }
exec 9>/var/lib/dpkg/modelgate-node-packages.lock
flock 9
export DEBIAN_FRONTEND=noninteractive
t=$SECONDS; log "apt-get update"
apt-get update -qq >&2 || { log "apt-get update failed: Debian's package index is not reachable from here"; exit 3; }
log "apt-get update took $((SECONDS - t))s"
t=$SECONDS; log "installing ${missing[*]}"
# --no-install-recommends: no service units pulled in beyond the packages'; policy-rc.d keeps the
# packages' own services (containerd, docker) from starting: the dev node runs its own instances.
policy=/usr/sbin/policy-rc.d; made_policy=0
if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; made_policy=1; fi
trap '[ $made_policy = 1 ] && rm -f "$policy"' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
log "installed ${missing[*]} in $((SECONDS - t))s"
for p in "${missing[@]}"; do [ -x "${PROBE[$p]}" ] || { log "$p installed but ${PROBE[$p]} is missing"; exit 1; }; done
