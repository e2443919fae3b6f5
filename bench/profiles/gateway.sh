# bench profile "gateway": the real workspace gateway process (docs/workspace-gateway.md), as the operator runs it:
# `modelgate serve --management-namespace NS --auth-config ...`, which loads the namespace's ServingEndpoints
# through its watch on a real kube-apiserver (bench/kube_plane.py, started here and stopped when run.sh exits):
# the bench's bench-chat and bench-stream plus 200 more (GATEWAY_EXTRA_ENDPOINTS), each with its own Secret, whose
# keys it reads from --secrets-dir as from the pod's projected volume. Every request carries the caller's
# Kubernetes token (TokenReview + a SubjectAccessReview for `query`, cached as in a cluster; the gateway has no
# API keys). The gateway serves every endpoint itself (no hop), so its added cost is measured against profile
# "endpoint-proxy": the per-endpoint proxy (`serve -f`) for the same endpoints with the same authentication and the
# same control plane. In one run: MG_PROFILES="endpoint-proxy gateway" bench/compare.sh (issue 16 asks added p50
# <= 0.3 ms at one connection and CPU/request <= 1.2x). Sourced by bench/run.sh.
source "$BENCH/kube_plane.sh"
export NEW_PROXY_CMD='exec "$MG_BIN" serve --management-namespace "$BENCH_NAMESPACE" --management-server "$(cat "$KUBE_DIR/server")" --management-token-file "$KUBE_DIR/gateway.token" --management-ca-file "$KUBE_DIR/ca.crt" --auth-config "$KUBE_DIR/auth-gateway.yaml" --secrets-dir "$MG_SECRETS" --host 127.0.0.1 --port "$PORT" --workers 1 --log-level warning $MG_EXTRA_ARGS'
NEW_PROXY_NAME="modelgate workspace gateway (1 worker, $((GATEWAY_EXTRA_ENDPOINTS + 2)) endpoints from the API server, Kubernetes tokens)"
export NEW_PROXY_NAME
