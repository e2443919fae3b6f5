#!/usr/bin/env bash
# Two modelgate profiles measured side by side: a paired, interleaved A/B throughput run.
#
#   bench/paired.sh plain tracing            # issue 17: CPU µs/request, tracing on <= 1.3x off
#   bench/paired.sh plain tables             # issue 17: requests/s, Delta payload logging on >= 0.8x off
#   bench/paired.sh plain plain              # the A/A control: the ratio must come out ~1.00
#   PAIRS=10 PHASE=5 WARM=1 bench/paired.sh plain tracing   # defaults: PAIRS=24 PHASE=2 WARM=1
#
# Why: bench/compare.sh measures the two profiles in separate bench/run.sh calls a minute apart, and this machine's
# speed drifts by 20-60 % between them, so one pair's ratio ranges 1.05-1.92x for the same code. Here both profiles
# run at once (profile A on PORT_A, profile B on PORT_B, each modelgate in its own session and run sub-folder a/ and
# b/, its profile's helpers started and stopped with it; one nginx upstream mock from the shared harness's
# configs/), and the load alternates between them in short phases: PAIRS pairs of one PHASE-second wrk phase each
# (64 connections, the harness's post.lua and bodies/chat.json), the order AB BA BA AB, repeated, each phase after
# a WARM-second warm-up at the same load. For every pair it records each proxy's requests and requests/s and the
# CPU ticks of each modelgate's whole process group over the pair's window (both phases, so background work of a
# profile, a Delta commit or a span export, is charged to it even when it runs during the other's phase), then the
# per-pair ratios B/A; the drift is common to both halves of a pair and cancels in the ratio.
# bench/paired_report.py writes the report (the median of the per-pair ratios, its spread and the verdicts of
# issue 17's lines); this script exits with its status (1: a line missed or a request failed).
#
# It measures throughput-phase CPU and requests/s only; latency at one connection and streaming stay with
# bench/compare.sh. Everything listens on and talks to 127.0.0.1; every load is bounded (wrk -d plus timeout);
# everything started here is stopped on exit or on a signal. Results: bench/results/paired-<timestamp>/.
set -uo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$BENCH/.." && pwd)
SHARED_BENCH=${SHARED_BENCH:-$REPO/../shared/bench}
MODELGATE=${MODELGATE:-$REPO/.venv/bin/modelgate}

PAIRS=${PAIRS:-24}; PHASE=${PHASE:-2}; WARM=${WARM:-1}; FIRST_WARM=${FIRST_WARM:-3}
CONNS=${THR_CONNS:-64}; WRK_THREADS=${WRK_THREADS:-1}
STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-180}; READY_SETTLE=${READY_SETTLE:-2}
NGINX_PORT=${NGINX_PORT:-18000}; SSE_PORT=${SSE_PORT:-18001}  # no SSE mock: the streaming endpoint is not loaded
PORT_A=${PORT_A:-18040}; PORT_B=${PORT_B:-18041}

if (($# != 2)); then
  echo "usage: bench/paired.sh PROFILE_A PROFILE_B   (e.g. plain tracing; knobs PAIRS PHASE WARM, see bench/README.md)" >&2
  exit 2
fi
A=$1 B=$2
for p in "$A" "$B"; do
  [[ -f $BENCH/profiles/$p.sh ]] || {
    echo "bench/paired.sh: no profile $p (bench/profiles/: $(cd "$BENCH/profiles" && ls | sed 's/\.sh$//' | tr '\n' ' '))" >&2
    exit 2
  }
done
for n in PAIRS PHASE WARM FIRST_WARM CONNS; do
  [[ ${!n} =~ ^[0-9]+$ ]] || { echo "bench/paired.sh: $n must be a whole number, not ${!n}" >&2; exit 2; }
done
((PAIRS >= 1 && PHASE >= 1)) || { echo "bench/paired.sh: PAIRS and PHASE must be at least 1" >&2; exit 2; }
if [[ ! -f $SHARED_BENCH/run.sh || ! -f $SHARED_BENCH/post.lua ]]; then
  echo "bench/paired.sh: the shared harness was not found at $SHARED_BENCH; set SHARED_BENCH. Nothing was run." >&2
  exit 2
fi
SHARED_BENCH=$(cd "$SHARED_BENCH" && pwd)
[[ -x $MODELGATE ]] || { echo "bench/paired.sh: $MODELGATE not found; make venv first (or set MODELGATE)" >&2; exit 2; }
for tool in nginx wrk curl setsid timeout; do
  command -v "$tool" >/dev/null || { echo "bench/paired.sh: $tool is not installed (the harness's setup.sh installs nginx and wrk)" >&2; exit 2; }
done
# The harness's own process control and CPU accounting (start_bg: each process in its own session; stop_pid: TERM
# the group, KILL after 20 s; group_cpu_ticks: utime+stime of a process group; port_free), read from its run.sh so
# that the figures here are counted exactly as the harness counts them.
for fn in start_bg stop_pid group_cpu_ticks port_free; do
  def=$(sed -n "/^$fn() {.*}\$/p; /^$fn() {[^}]*\$/,/^}/p" "$SHARED_BENCH/run.sh")
  [[ -n $def ]] || { echo "bench/paired.sh: $SHARED_BENCH/run.sh has no function $fn" >&2; exit 2; }
  eval "$def"
done

RUN=${RUN_DIR:-$BENCH/results/paired-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$RUN/logs" "$RUN/raw"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$RUN/run.log" >&2; }

# ---- stopping: the load, both slots (each stops its modelgate and its profile's helpers), the mock --------------
STARTED=()      # start_bg's list: the mock
SLOT_PIDS=()    # the slot subshells
WRK_PID=
cleanup() {
  local p
  if [[ -n $WRK_PID ]]; then kill -TERM "$WRK_PID" 2>/dev/null; wait "$WRK_PID" 2>/dev/null; WRK_PID=; fi
  for p in "${SLOT_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${SLOT_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  SLOT_PIDS=()
  for p in "${STARTED[@]}"; do stop_pid "$p"; done
  STARTED=()
}
trap cleanup EXIT
trap 'log "interrupted"; exit 143' TERM
trap 'log "interrupted"; exit 130' INT

# ---- one slot: a subshell that sources its profile (bench/profile_env.sh, as bench/run.sh does) with RUN set to
# the slot's folder, starts modelgate in its own session and waits; on TERM (or when modelgate ends) it stops
# modelgate and runs its profile's bench_on_exit commands. Its folder gets pgid (for the CPU ticks), auth, path.
start_slot() {  # slot profile port
  local slot=$1 profile=$2 port=$3
  mkdir -p "$RUN/$slot/logs"
  (
    RUN=$RUN/$slot MG_PROFILE=$profile MG_PID=
    STARTED=()
    _slot_exit() {
      [[ -n $MG_PID ]] && stop_pid "$MG_PID"
      declare -F _bench_exit >/dev/null && _bench_exit
    }
    trap _slot_exit EXIT
    trap 'exit 143' TERM
    set -e
    # shellcheck source=profile_env.sh
    source "$BENCH/profile_env.sh"
    set +e
    printf '%s' "$NEW_PROXY_AUTH" >"$RUN/auth"
    printf '%s\n' "$NEW_PROXY_PATH" >"$RUN/path"
    printf 'profile=%s\nport=%s\nname=%s\n' "$MG_PROFILE" "$port" "$NEW_PROXY_NAME" >"$RUN/slot.txt"
    export PORT=$port UPSTREAM_BASE=http://127.0.0.1:$NGINX_PORT/v1 STREAM_UPSTREAM_BASE=http://127.0.0.1:$SSE_PORT/v1
    export NGINX_PORT SSE_PORT
    start_bg modelgate "$NEW_PROXY_CMD"
    MG_PID=$LAST_PID
    printf '%s\n' "$MG_PID" >"$RUN/pgid"
    wait "$MG_PID"
    echo "modelgate ($MG_PROFILE) exited with status $?" >&2
  ) >"$RUN/$slot/slot.log" 2>&1 &
  SLOT_PIDS+=($!)
}

smoke() {  # slot -> 0 if a POST through it returns 200 with "choices"
  local auth=() out
  [[ -s $RUN/$1/path ]] || return 1  # the slot has not sourced its profile yet
  [[ -s $RUN/$1/auth ]] && auth=(-H "Authorization: $(cat "$RUN/$1/auth")")
  out=$(curl -s -m 10 -X POST -H 'Content-Type: application/json' "${auth[@]}" --data @"$SHARED_BENCH/bodies/chat.json" \
        -w '\n%{http_code}' "http://127.0.0.1:$(slot_port "$1")$(cat "$RUN/$1/path")" 2>/dev/null) || return 1
  [[ ${out##*$'\n'} == 200 && $out == *'"choices"'* ]]
}
slot_port() { if [[ $1 == a ]]; then echo "$PORT_A"; else echo "$PORT_B"; fi; }
slot_alive() { [[ -s $RUN/$1/pgid ]] && kill -0 "$(cat "$RUN/$1/pgid")" 2>/dev/null; }

# The harness's wrk command line (post.lua, bodies/chat.json, 10 s request timeout), in the background so that a
# signal is handled at once; bounded by -d and by timeout.
load() {  # slot outfile conns seconds
  local auth=""
  [[ -s $RUN/$1/auth ]] && auth=$(cat "$RUN/$1/auth")
  AUTH=$auth BODY_FILE=$SHARED_BENCH/bodies/chat.json timeout $(($4 + 30)) wrk -t"$WRK_THREADS" -c"$3" -d"$4s" \
    --timeout 10s -s "$SHARED_BENCH/post.lua" "http://127.0.0.1:$(slot_port "$1")$(cat "$RUN/$1/path")" >"$2" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID"
  WRK_PID=
}

# ---- the run's own record ------------------------------------------------------------------------------------------
# shellcheck source=run_info.sh
source "$BENCH/run_info.sh"
run_versions "$RUN/modelgate-versions.txt"
echo "proxy source hash before: $(code_hash)" >>"$RUN/modelgate-versions.txt"
{
  echo "a=$A"; echo "b=$B"; echo "pairs=$PAIRS"; echo "phase_s=$PHASE"; echo "warm_s=$WARM"; echo "conns=$CONNS"
  echo "wrk_threads=$WRK_THREADS"; echo "clk_tck=$(getconf CLK_TCK)"; echo "nproc=$(nproc)"; echo "started=$(date -Is)"
} >"$RUN/meta.txt"
load_snapshot before

# ---- the mock and both proxies ---------------------------------------------------------------------------------------
for p in "$NGINX_PORT" "$PORT_A" "$PORT_B"; do
  port_free "$p" || { log "port $p already in use; set NGINX_PORT / PORT_A / PORT_B"; exit 1; }
done
mkdir -p "$RUN/conf"
sed -e "s#@RUN@#$RUN#g" -e "s#@NGINX_PORT@#$NGINX_PORT#g" -e "s#@SSE_PORT@#$SSE_PORT#g" \
  "$SHARED_BENCH/configs/nginx.conf.in" >"$RUN/conf/nginx.conf"
start_bg nginx "exec nginx -c '$RUN/conf/nginx.conf' -p '$RUN'"
start_slot a "$A" "$PORT_A"
start_slot b "$B" "$PORT_B"
log "profiles: a=$A on :$PORT_A, b=$B on :$PORT_B; waiting until both answer (up to ${STARTUP_TIMEOUT}s)"
ready=()
for _ in $(seq 1 $((STARTUP_TIMEOUT * 4))); do
  ready=()
  for s in a b; do smoke "$s" && ready+=("$s"); done
  ((${#ready[@]} == 2)) && break
  for s in a b; do
    if [[ -s $RUN/$s/pgid ]] && ! slot_alive "$s"; then log "slot $s ($(sed -n 's/^profile=//p' "$RUN/$s/slot.txt")) exited; see $RUN/$s/"; exit 1; fi
  done
  for p in "${SLOT_PIDS[@]}"; do kill -0 "$p" 2>/dev/null || { log "a slot failed to start; see $RUN/a/slot.log, $RUN/b/slot.log"; exit 1; }; done
  sleep 0.25
done
((${#ready[@]} == 2)) || { log "not ready after ${STARTUP_TIMEOUT}s (ready: ${ready[*]:-none}); see $RUN/a/, $RUN/b/"; exit 1; }
log "both ready (pgid a=$(cat "$RUN/a/pgid") b=$(cat "$RUN/b/pgid")); first warm-up ${FIRST_WARM}s each"
sleep "$READY_SETTLE"
if ((FIRST_WARM > 0)); then
  load a "$RUN/raw/first_a.warm" "$CONNS" "$FIRST_WARM"
  load b "$RUN/raw/first_b.warm" "$CONNS" "$FIRST_WARM"
fi

# ---- the pairs: AB BA BA AB, repeated; the windows are back to back, so no CPU falls between two pairs ---------------
ticks() { echo "$(group_cpu_ticks "$(cat "$RUN/a/pgid")") $(group_cpu_ticks "$(cat "$RUN/b/pgid")")"; }
read -r ta0 tb0 <<<"$(ticks)"
for ((i = 1; i <= PAIRS; i++)); do
  case $(((i - 1) % 4)) in 0 | 3) order="a b" ;; *) order="b a" ;; esac
  t0=$(date +%s.%N)
  for s in $order; do
    n=$(printf 'p%02d_%s' "$i" "$s")
    if ((WARM > 0)); then load "$s" "$RUN/raw/$n.warm" "$CONNS" "$WARM"; fi
    load "$s" "$RUN/raw/$n.thr" "$CONNS" "$PHASE"
  done
  read -r ta1 tb1 <<<"$(ticks)"
  alive="$(slot_alive a && echo 1 || echo 0) $(slot_alive b && echo 1 || echo 0)"
  printf 'pair=%s order=%s ticks_a=%s ticks_b=%s seconds=%s alive=%s\n' "$i" "${order// /}" "$((ta1 - ta0))" \
    "$((tb1 - tb0))" "$(echo "$(date +%s.%N) - $t0" | bc)" "${alive// /}" >>"$RUN/pairs.txt"
  log "pair $i (${order// /}): $(grep -ho 'rps=[0-9.]*' "$RUN/raw/$(printf 'p%02d' "$i")"_a.thr) a," \
    "$(grep -ho 'rps=[0-9.]*' "$RUN/raw/$(printf 'p%02d' "$i")"_b.thr) b; ticks a $((ta1 - ta0)) b $((tb1 - tb0))"
  ta0=$ta1 tb0=$tb1
  if [[ $alive != "1 1" ]]; then log "a modelgate died during pair $i (alive a/b: $alive); stopping"; break; fi
done

load_snapshot after
echo "proxy source hash after:  $(code_hash)" >>"$RUN/modelgate-versions.txt"
echo "finished=$(date -Is)" >>"$RUN/meta.txt"
cleanup
status=0
python3 "$BENCH/paired_report.py" "$RUN" >"$RUN/report.md" || status=$?
cat "$RUN/report.md"
log "results in $RUN (exit $status)"
exit "$status"
