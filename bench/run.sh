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

# The measured modelgate: bench/profile_env.sh writes its config into the run folder and sources the profile,
# bench/profiles/$MG_PROFILE.sh (default plain), which may write files under $RUN, set MG_EXTRA_ARGS (more `serve`
# flags), NEW_PROXY_AUTH (the Authorization header the load sends), NEW_PROXY_NAME and NEW_PROXY_CMD, and register
# the teardown of what it starts (a Redis, an OTLP sink, a control plane) with `bench_on_exit CMD`: those commands run
# in reverse order when run.sh exits, normally or on a signal, so nothing outlives this run (bench/compare.sh relies
# on it). The harness runs NEW_PROXY_CMD with `bash -c` in its own process group; $PORT is its NEW_PROXY_PORT.
trap '_bench_exit' EXIT  # defined by profile_env.sh, sourced below before anything is started
# On a signal, stop the harness first (its own TERM trap stops its targets and mocks after the current step).
HARNESS_PID=
_bench_stop_harness() {
  if [[ -n $HARNESS_PID ]]; then kill -TERM "$HARNESS_PID" 2>/dev/null || true; wait "$HARNESS_PID" 2>/dev/null || true; fi
}
trap '_bench_stop_harness; exit 143' TERM
trap '_bench_stop_harness; exit 130' INT
# shellcheck source=profile_env.sh
source "$BENCH/profile_env.sh"

# shellcheck source=run_info.sh
source "$BENCH/run_info.sh"
run_versions "$RUN/modelgate-versions.txt"
# The harness restarts modelgate each round, so an edit of the proxy's source mid-run shows in the hashes.
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
