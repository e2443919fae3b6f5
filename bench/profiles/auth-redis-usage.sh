# bench profile "auth-redis-usage": rate limits counted in a real Redis (started here on a loopback port, stopped
# when bench/run.sh exits), usage records on (to a file under $RUN), limits high enough that nothing is refused:
# the cost of one Redis admission script per request (and the batched settlements) plus usage tracking.
# Every request carries an API key (--api-keys). Sourced by bench/run.sh (RUN, REPO, BENCH, MODELGATE, MG_CONF set).
# redis-server: from PATH, else Debian's package (as tests/proxy/redis_server.py does).
REDIS_BIN=$(command -v redis-server || true)
if [[ -z $REDIS_BIN ]]; then
  apt-get install -y -o DPkg::Lock::Timeout=120 redis-server >"$RUN/redis-install.log" 2>&1 || true
  REDIS_BIN=$(command -v redis-server || true)
fi
[[ -n $REDIS_BIN ]] || { echo "profile auth-redis-usage: redis-server is not installed and apt-get could not install it" >&2; exit 1; }
REDIS_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$RUN/redis"
"$REDIS_BIN" --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$RUN/redis" --save "" --appendonly no \
  --daemonize yes --pidfile "$RUN/redis/redis.pid" --logfile "$RUN/redis/redis.log"
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$REDIS_PORT") 2>/dev/null && break
  sleep 0.1
done
_bench_stop_redis() {  # and wait until it is gone, so nothing of this run overlaps the next (bench/compare.sh)
  local pid
  pid=$(cat "$RUN/redis/redis.pid" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
}
bench_on_exit _bench_stop_redis

# The bench endpoints with limits (calls and tokens per endpoint and per user: two meters per request) and usage
# tracking; a limit of a billion calls/tokens a minute refuses nothing, so the load measures the cost only.
python3 - "$MG_CONF" "$RUN/modelgate-endpoints-limited.yaml" <<'PY'
import sys
import yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    d["spec"]["aiGateway"] = {
        "rateLimits": [{"key": "endpoint", "calls": 1_000_000_000, "tokens": 1_000_000_000, "renewalPeriod": "minute"},
                       {"key": "user", "calls": 1_000_000_000, "renewalPeriod": "minute"}],
        "usageTrackingConfig": {"enabled": True},
    }
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
MG_CONF=$RUN/modelgate-endpoints-limited.yaml
export MG_CONF
# Authentication: every request carries an API key, minted as bench/profiles/auth-limits-usage.sh does.
mkdir -p "$RUN/api-keys"
"$MODELGATE" api-key create --principal bench@example.com --write "$RUN/api-keys" 2>"$RUN/api-key.out" >/dev/null
BENCH_API_KEY=$(sed -n 's/^API key (shown once, store it now): //p' "$RUN/api-key.out")
rm -f "$RUN/api-key.out"
[[ -n $BENCH_API_KEY ]] || { echo "bench/profiles/auth-redis-usage.sh: could not mint an API key" >&2; exit 2; }
MG_EXTRA_ARGS="--api-keys $RUN/api-keys --rate-limit-redis-url redis://127.0.0.1:$REDIS_PORT/0 --usage-log $RUN/usage.jsonl $MG_EXTRA_ARGS"
NEW_PROXY_AUTH="Bearer $BENCH_API_KEY"
export NEW_PROXY_AUTH
