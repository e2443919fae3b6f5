#!/usr/bin/env bash
# Several modelgate profiles compared in ONE run: bench/run.sh (the shared harness with one modelgate profile as
# its "new proxy") once per profile and round, the profiles' order reversed every other round (ABBA for two), the
# baselines (TARGETS, default direct + thin-aiohttp) measured again in every call, then one combined report
# (bench/compare_report.py): each profile's figures per round, against the same call's thin-aiohttp and against
# the first profile (the reference) in the same round, the median over rounds, and the machine load per call.
#
#   MG_PROFILES="plain payload-table tables" bench/compare.sh  # issue 17: Delta tables, requests/s >= 0.8x plain
#   MG_PROFILES="plain tracing" bench/compare.sh            # issue 17: tracing, CPU/request <= 1.3x plain
#   MG_PROFILES="endpoint-proxy gateway" bench/compare.sh   # issue 16: the gateway against the per-endpoint proxy
#   ROUNDS=2 THR_DUR=5 LAT_DUR=2 STREAM_DUR=2 TARGETS=thin-aiohttp MG_PROFILES="plain tables" bench/compare.sh
#
# Each call is a separate bench/run.sh process: a profile's side effects (a Redis, an OTLP sink, a control plane)
# are set up by its call and torn down when that call exits, before the next one starts. The harness's knobs
# (THR_DUR, LAT_DUR, STREAM_DUR, *_PORT, ...) pass through. Output: bench/results/compare-<timestamp>/ with one
# folder per call (r<round>-<profile>/, a complete bench/run.sh result), calls.txt and compare.md.
set -euo pipefail
# On Ctrl-C or TERM: stop the running call (its run.sh stops the harness and tears its profile down), then stop.
CALL_PID=
_stop_call() {
  if [[ -n $CALL_PID ]]; then kill -TERM "$CALL_PID" 2>/dev/null || true; wait "$CALL_PID" 2>/dev/null || true; fi
}
trap '_stop_call; echo "bench/compare.sh: interrupted" >&2; exit 130' INT
trap '_stop_call; exit 143' TERM
BENCH=$(cd "$(dirname "$0")" && pwd)
read -r -a PROFILES <<<"${MG_PROFILES:-}"
if ((${#PROFILES[@]} < 2)); then
  echo "bench/compare.sh: set MG_PROFILES to two or more profiles, the reference first, e.g. MG_PROFILES=\"plain tables\"" >&2
  exit 2
fi
for p in "${PROFILES[@]}"; do
  [[ -f $BENCH/profiles/$p.sh ]] || {
    echo "bench/compare.sh: no profile $p (bench/profiles/: $(cd "$BENCH/profiles" && ls | sed 's/\.sh$//' | tr '\n' ' '))" >&2
    exit 2
  }
done
ROUNDS=${ROUNDS:-2}
BASELINES=()
for t in ${TARGETS:-direct thin-aiohttp}; do [[ $t == new ]] || BASELINES+=("$t"); done
RUN=${RUN_DIR:-$BENCH/results/compare-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$RUN"
unset RUN_DIR MG_PROFILE
printf '%s\n' "${PROFILES[@]}" >"$RUN/profiles.txt"

# What one call costs at these knobs (the harness's fixed pauses included; a profile's own set-up, e.g. the
# gateway's control plane, comes on top: ~15-30 s).
thr=${THR_DUR:-15} lat=${LAT_DUR:-10} stream=${STREAM_DUR:-5} warm=${WARM_DUR:-3} settle=${READY_SETTLE:-2}
per_target=$((settle + warm + 1 + thr + 1 + lat + 1 + 2 * stream + 2 + 3))
targets_per_call=$((${#BASELINES[@]} + 1))
calls=$((ROUNDS * ${#PROFILES[@]}))
estimate=$((calls * (targets_per_call * per_target + 5)))
echo "bench/compare.sh: ${#PROFILES[@]} profiles (${PROFILES[*]}; reference ${PROFILES[0]}) x $ROUNDS rounds = $calls calls," \
  "each measuring ${BASELINES[*]} + modelgate; about $((estimate / 60)) min $((estimate % 60)) s plus start-ups" \
  "and profile set-up. Results: $RUN" >&2

started=$(date +%s)
for ((r = 1; r <= ROUNDS; r++)); do
  order=("${PROFILES[@]}")
  targets="${BASELINES[*]} new"
  if ((r % 2 == 0)); then  # reversed: the profiles (ABBA for two) and the targets within each call
    order=(); for ((i = ${#PROFILES[@]} - 1; i >= 0; i--)); do order+=("${PROFILES[i]}"); done
    targets="new"; for ((i = ${#BASELINES[@]} - 1; i >= 0; i--)); do targets="$targets ${BASELINES[i]}"; done
  fi
  for p in "${order[@]}"; do
    dir=$RUN/r$r-$p
    t0=$(date +%s)
    echo "[$(date +%H:%M:%S)] round $r, profile $p: targets $targets; $(uptime | sed 's/.*load average/load average/')" >&2
    call=0  # run.sh exits 1 when its own acceptance check misses too: the report judges what ran, not this
    ROUNDS=1 TARGETS=$targets MG_PROFILE=$p RUN_DIR=$dir "$BENCH/run.sh" >"$RUN/r$r-$p.log" 2>&1 &
    CALL_PID=$!
    wait "$CALL_PID" || call=$?
    CALL_PID=
    printf 'round=%s profile=%s dir=%s exit=%s seconds=%s\n' "$r" "$p" "r$r-$p" "$call" "$(($(date +%s) - t0))" \
      >>"$RUN/calls.txt"
    echo "[$(date +%H:%M:%S)] round $r, profile $p: exit $call after $(($(date +%s) - t0)) s (log: $RUN/r$r-$p.log)" >&2
    if [[ ! -d $dir/raw ]]; then  # the harness never started (no shared harness, no venv, a profile's set-up failed)
      tail -20 "$RUN/r$r-$p.log" >&2
      echo "bench/compare.sh: round $r, profile $p measured nothing; stopping here" >&2
      exit 2
    fi
  done
done
echo "bench/compare.sh: $calls calls in $(($(date +%s) - started)) s" >&2
status=0
python3 "$BENCH/compare_report.py" "$RUN" >"$RUN/compare.md" || status=$?
cat "$RUN/compare.md"
echo "results in $RUN" >&2
exit "$status"
