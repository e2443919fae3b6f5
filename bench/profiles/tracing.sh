# bench profile "tracing": OpenTelemetry traces on (docs/tracing.md), every span exported over OTLP/HTTP to a
# local sink that discards them (bench/otlp_sink.py, started here in the background and stopped when run.sh
# exits). Compare CPU µs/request with profile "plain": issue 17 asks at most 1.3x.
# Sourced by bench/run.sh (RUN, REPO, BENCH set).
rm -f "$RUN/otlp-sink.port"
python3 "$BENCH/otlp_sink.py" "$RUN/otlp-sink.port" 2>>"$RUN/otlp-sink.log" &
OTLP_SINK_PID=$!
bench_on_exit 'kill "$OTLP_SINK_PID" 2>/dev/null; wait "$OTLP_SINK_PID" 2>/dev/null'
for _ in $(seq 50); do [[ -s $RUN/otlp-sink.port ]] && break; sleep 0.1; done
if [[ ! -s $RUN/otlp-sink.port ]]; then
  echo "bench/profiles/tracing.sh: the OTLP sink did not start (see $RUN/otlp-sink.log)" >&2
  exit 2
fi
# Only the measured modelgate gets the OTEL_* variables (the other targets run without them).
export MG_OTEL_ENV="OTEL_TRACES_EXPORTER=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:$(cat "$RUN/otlp-sink.port") OTEL_SERVICE_NAME=modelgate-bench"
MG_EXTRA_ARGS="--no-auth $MG_EXTRA_ARGS"
export NEW_PROXY_CMD='exec env $MG_OTEL_ENV "$MG_BIN" serve -f "$MG_CONF" --secrets-dir "$MG_SECRETS" --host 127.0.0.1 --port "$PORT" --workers 1 --log-level warning $MG_EXTRA_ARGS'
