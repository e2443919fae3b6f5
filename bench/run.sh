#!/usr/bin/env bash
# modelgate proxy overhead benchmark: `modelgate serve` against a direct call to a fast local upstream
# (nginx returning fixed JSON; an SSE mock for streaming), side by side with LiteLLM, MLflow's gateway and
# two bare starlette forwarders (httpx, aiohttp), all in one run.
#
# The measuring harness is ../shared/bench (its run.sh starts the mocks and each target alone, runs wrk and
# an SSE client, samples CPU and RSS, and prints tables). This script only plugs modelgate in as its
# "new proxy", then checks the acceptance targets with bench/acceptance.py.
#
#   bench/run.sh                                   # modelgate + direct, LiteLLM, MLflow, both forwarders
#   TARGETS="direct thin-aiohttp" ROUNDS=1 bench/run.sh   # quick: modelgate vs direct and the aiohttp forwarder
#   SHARED_BENCH=/path/to/shared/bench bench/run.sh
#
# Everything listens on and talks to 127.0.0.1 only; every load run is bounded (see ../shared/bench/README.md
# for THR_DUR, LAT_DUR, STREAM_DUR, ... which pass through unchanged). Results go to bench/results/<timestamp>/.
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$REPO/../shared/bench}
MODELGATE=${MODELGATE:-$REPO/.venv/bin/modelgate}

if [[ ! -x $SHARED_BENCH/run.sh ]]; then
  cat >&2 <<EOF
bench/run.sh: the shared harness was not found at $SHARED_BENCH (expected run.sh there).
It is the folder ../shared/bench next to this repository; point SHARED_BENCH at a copy of it, e.g.
  SHARED_BENCH=/path/to/shared/bench bench/run.sh
Nothing was run.
EOF
  exit 2
fi
SHARED_BENCH=$(cd "$SHARED_BENCH" && pwd)
if [[ ! -x $MODELGATE ]]; then
  echo "bench/run.sh: $MODELGATE not found; create the venv first (make venv, or set MODELGATE=/path/to/modelgate)" >&2
  exit 2
fi

export ROUNDS=${ROUNDS:-2}
export NGINX_PORT=${NGINX_PORT:-18000} SSE_PORT=${SSE_PORT:-18001}
# One worker each: the acceptance figures compare single-worker proxies.
export TARGETS=${TARGETS:-"direct litellm-1w mlflow-1w thin-httpx thin-aiohttp"}
if [[ " $TARGETS " != *" new "* ]]; then TARGETS="$TARGETS new"; fi
RUN=${RUN_DIR:-$BENCH/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$RUN"
export RUN_DIR=$RUN

# modelgate's config: the endpoints with the mock ports filled in, and the dummy key in a Secret-volume layout.
sed -e "s#@NGINX_PORT@#$NGINX_PORT#g" -e "s#@SSE_PORT@#$SSE_PORT#g" "$BENCH/endpoints.yaml" >"$RUN/modelgate-endpoints.yaml"
mkdir -p "$RUN/secrets/bench-upstream"
printf 'sk-bench-not-a-real-key\n' >"$RUN/secrets/bench-upstream/api-key"

export MG_BIN=$MODELGATE MG_CONF=$RUN/modelgate-endpoints.yaml MG_SECRETS=$RUN/secrets
# A profile turns gateway features on for the measured modelgate: bench/profiles/<name>.sh is sourced here
# (with RUN, REPO, BENCH and MODELGATE set) and may write files under $RUN, set MG_EXTRA_ARGS (more `serve`
# flags), NEW_PROXY_AUTH (the Authorization header the load sends) and NEW_PROXY_NAME.
MG_PROFILE=${MG_PROFILE:-plain}
MG_EXTRA_ARGS=${MG_EXTRA_ARGS:-}
# A profile that starts something (a Redis, an OTLP sink, a control plane) registers its teardown with
# `bench_on_exit CMD`, never with its own `trap ... EXIT` (one would replace another's): the commands run in reverse
# order when run.sh exits, normally or on a signal, so nothing outlives this run (bench/compare.sh relies on it).
BENCH_ON_EXIT=()
bench_on_exit() { BENCH_ON_EXIT+=("$1"); }
_bench_exit() {
  local i
  for ((i = ${#BENCH_ON_EXIT[@]} - 1; i >= 0; i--)); do eval "${BENCH_ON_EXIT[i]}" || true; done
}
trap _bench_exit EXIT
# On a signal, stop the harness first (its own TERM trap stops its targets and mocks after the current step).
HARNESS_PID=
_bench_stop_harness() {
  if [[ -n $HARNESS_PID ]]; then kill -TERM "$HARNESS_PID" 2>/dev/null || true; wait "$HARNESS_PID" 2>/dev/null || true; fi
}
trap '_bench_stop_harness; exit 143' TERM
trap '_bench_stop_harness; exit 130' INT
if [[ ! -f $BENCH/profiles/$MG_PROFILE.sh ]]; then
  echo "bench/run.sh: no profile $MG_PROFILE (bench/profiles/: $(cd "$BENCH/profiles" && ls | sed 's/\.sh$//' | tr '\n' ' '))" >&2
  exit 2
fi
# shellcheck source=/dev/null
source "$BENCH/profiles/$MG_PROFILE.sh"
export MG_EXTRA_ARGS MG_PROFILE
export NEW_PROXY_NAME=${NEW_PROXY_NAME:-modelgate (1 worker, profile $MG_PROFILE)}
export NEW_PROXY_PATH=${NEW_PROXY_PATH:-/serving-endpoints/chat/completions}
# Run by the harness with `bash -c` in its own process group; $PORT is the harness's NEW_PROXY_PORT.
export NEW_PROXY_CMD=${NEW_PROXY_CMD:-'exec "$MG_BIN" serve -f "$MG_CONF" --secrets-dir "$MG_SECRETS" --host 127.0.0.1 --port "$PORT" --workers 1 --log-level warning $MG_EXTRA_ARGS'}

load_snapshot() {  # label
  {
    echo "== $1 $(date -Is)"
    uptime
    top -bn1 -o %CPU | sed -n '7,14p'
  } >>"$RUN/load.txt" 2>&1 || true
}
{
  echo "modelgate: $("$REPO/.venv/bin/python" -c 'import importlib.metadata as m;print(m.version("modelgate"))' 2>/dev/null) (git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet 2>/dev/null || echo '+dirty'))"
  echo "modelgate deps: $("$REPO/.venv/bin/python" -c 'import importlib.metadata as m;print(" ".join(p+"-"+m.version(p) for p in ["starlette","uvicorn","uvloop","httptools","aiohttp","orjson","pydantic"]))' 2>/dev/null)"
  echo "python (modelgate venv): $("$REPO/.venv/bin/python" -c 'import sys;print(sys.version.split()[0])')"
} >"$RUN/modelgate-versions.txt"

code_hash() {  # the proxy's source as run: the harness restarts modelgate each round, so an edit mid-run shows here
  (cd "$REPO" && find proxy -name '*.py' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
}
load_snapshot before
echo "proxy source hash before: $(code_hash)" >>"$RUN/modelgate-versions.txt"
status=0
"$SHARED_BENCH/run.sh" &  # in the background, so that a signal to this script is handled at once (see above)
HARNESS_PID=$!
wait "$HARNESS_PID" || status=$?
HARNESS_PID=
load_snapshot after
echo "proxy source hash after:  $(code_hash)" >>"$RUN/modelgate-versions.txt"
cat "$RUN/modelgate-versions.txt" >&2
cat "$RUN/load.txt" >&2
python3 "$BENCH/acceptance.py" "$RUN" | tee "$RUN/acceptance.md"
echo "results in $RUN" >&2
exit "$status"
