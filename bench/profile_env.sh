# Sourced by bench/run.sh and bench/paired.sh: turns one bench profile into the environment that starts a measured
# modelgate, so that both scripts start it the same way. It writes modelgate's config into $RUN (the endpoints with
# the mock ports filled in, the dummy key in a Secret-volume layout), sources bench/profiles/$MG_PROFILE.sh, and
# leaves exported: MG_BIN, MG_CONF, MG_SECRETS, MG_EXTRA_ARGS (more `serve` flags), MG_PROFILE, NEW_PROXY_CMD (run
# with `bash -c`, $PORT set), NEW_PROXY_AUTH (the Authorization header the load sends, may be empty),
# NEW_PROXY_NAME and NEW_PROXY_PATH; a profile may export more for its NEW_PROXY_CMD (e.g. MG_OTEL_ENV).
#
# Needs BENCH, REPO, MODELGATE, RUN, NGINX_PORT and SSE_PORT set. A profile that starts something (a Redis, an
# OTLP sink, a control plane) registers its teardown with `bench_on_exit CMD`, never with its own `trap ... EXIT`
# (one would replace another's); the caller runs them, in reverse order, with `_bench_exit` from its own EXIT trap.
# The commands are evaluated then, with the variables of the shell that sourced the profile: one shell (or
# subshell) per profile.
BENCH_ON_EXIT=()
bench_on_exit() { BENCH_ON_EXIT+=("$1"); }
_bench_exit() {
  local i
  for ((i = ${#BENCH_ON_EXIT[@]} - 1; i >= 0; i--)); do eval "${BENCH_ON_EXIT[i]}" || true; done
}

MG_PROFILE=${MG_PROFILE:-plain}
MG_EXTRA_ARGS=${MG_EXTRA_ARGS:-}
if [[ ! -f $BENCH/profiles/$MG_PROFILE.sh ]]; then
  echo "bench: no profile $MG_PROFILE (bench/profiles/: $(cd "$BENCH/profiles" && ls | sed 's/\.sh$//' | tr '\n' ' '))" >&2
  exit 2
fi

# modelgate's config: the endpoints with the mock ports filled in, and the dummy key in a Secret-volume layout.
mkdir -p "$RUN/secrets/bench-upstream"
sed -e "s#@NGINX_PORT@#$NGINX_PORT#g" -e "s#@SSE_PORT@#$SSE_PORT#g" "$BENCH/endpoints.yaml" >"$RUN/modelgate-endpoints.yaml"
printf 'sk-bench-not-a-real-key\n' >"$RUN/secrets/bench-upstream/api-key"
export MG_BIN=$MODELGATE MG_CONF=$RUN/modelgate-endpoints.yaml MG_SECRETS=$RUN/secrets

# shellcheck source=/dev/null
source "$BENCH/profiles/$MG_PROFILE.sh"
export MG_EXTRA_ARGS MG_PROFILE
export NEW_PROXY_NAME=${NEW_PROXY_NAME:-modelgate (1 worker, profile $MG_PROFILE)}
export NEW_PROXY_PATH=${NEW_PROXY_PATH:-/serving-endpoints/chat/completions}
export NEW_PROXY_AUTH=${NEW_PROXY_AUTH:-}
export NEW_PROXY_CMD=${NEW_PROXY_CMD:-'exec "$MG_BIN" serve -f "$MG_CONF" --secrets-dir "$MG_SECRETS" --host 127.0.0.1 --port "$PORT" --workers 1 --log-level warning $MG_EXTRA_ARGS'}
