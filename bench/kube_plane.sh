# Sourced by the profiles "gateway" and "endpoint-proxy" (bench/run.sh has set RUN, REPO, BENCH, MG_CONF,
# MG_SECRETS): starts bench/kube_plane.py in the background (a real etcd + kube-apiserver, the bench's endpoints
# plus GATEWAY_EXTRA_ENDPOINTS more with their Secrets in namespace BENCH_NAMESPACE, the accounts and RBAC),
# waits until it is ready, and registers its teardown with bench_on_exit (it is stopped, and waited for, when
# run.sh exits). Sets KUBE_DIR (the helper's files: server, ca.crt, tokens, auth configs) and NEW_PROXY_AUTH
# (the caller's Kubernetes token, for the proxies' audience).
GATEWAY_EXTRA_ENDPOINTS=${GATEWAY_EXTRA_ENDPOINTS:-200}
BENCH_NAMESPACE=${BENCH_NAMESPACE:-bench}
KUBE_DIR=$RUN/kube
"$REPO/.venv/bin/python" "$BENCH/kube_plane.py" --out "$KUBE_DIR" --endpoints "$MG_CONF" --secrets-dir "$MG_SECRETS" \
  --namespace "$BENCH_NAMESPACE" --extra "$GATEWAY_EXTRA_ENDPOINTS" >>"$RUN/kube-plane.log" 2>&1 &
KUBE_PLANE_PID=$!
_bench_stop_kube_plane() {
  kill -TERM "$KUBE_PLANE_PID" 2>/dev/null || return 0
  wait "$KUBE_PLANE_PID" 2>/dev/null || true
}
bench_on_exit _bench_stop_kube_plane
for _ in $(seq 600); do
  [[ -f $KUBE_DIR/ready ]] && break
  kill -0 "$KUBE_PLANE_PID" 2>/dev/null || break
  sleep 0.5
done
if [[ ! -f $KUBE_DIR/ready ]]; then
  echo "bench/kube_plane.sh: the control plane did not come up (see $RUN/kube-plane.log):" >&2
  tail -20 "$RUN/kube-plane.log" >&2
  exit 2
fi
NEW_PROXY_AUTH="Bearer $(cat "$KUBE_DIR/caller.token")"
export NEW_PROXY_AUTH KUBE_DIR BENCH_NAMESPACE
