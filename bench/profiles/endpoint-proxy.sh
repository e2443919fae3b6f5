# bench profile "endpoint-proxy": the per-endpoint proxy as the operator runs it with bearer authentication and
# API keys off (`modelgate serve -f <its endpoint> --auth-config ...`), the reference for profile "gateway": the
# same control plane (bench/kube_plane.py: a real kube-apiserver with the same 202 endpoints and Secrets), the
# same auth config (Kubernetes tokens through TokenReview, `authorize: rbac`), the same caller token; only the
# process differs (its endpoints from a file, bench-chat and bench-stream only, no management API, no watch).
# Sourced by bench/run.sh.
source "$BENCH/kube_plane.sh"
export MG_CONF=$KUBE_DIR/proxy-endpoints.yaml
MG_EXTRA_ARGS="--auth-config $KUBE_DIR/auth-proxy.yaml $MG_EXTRA_ARGS"
NEW_PROXY_NAME="modelgate per-endpoint proxy (1 worker, serve -f, Kubernetes tokens)"
export NEW_PROXY_NAME
