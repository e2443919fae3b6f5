# bench profile "guardrails-pii-stream": output PII masking (aiGateway.guardrails.output.pii: MASK) on the
# streaming endpoint bench-stream, so the stream goes through the guardrails' bounded window
# (docs/guardrails.md); bench-chat stays plain. The added time-to-first-token of masking: run this profile and
# "plain" back to back with the same knobs and TARGETS including direct; each run's acceptance.md gives
# "added TTFB p50, streaming @1 conn" over direct, and the difference is the masking's (raw/*.sseq: ttfb_p50_us).
# Sourced by bench/run.sh (RUN, MG_CONF set): writes the endpoints with the guardrail into the run folder.
{
  cat "$MG_CONF"
  # bench-stream is the last document: these lines extend its spec.
  printf '  aiGateway:\n    guardrails:\n      output:\n        pii:\n          behavior: MASK\n'
} >"$RUN/modelgate-endpoints-guardrails.yaml"
MG_CONF=$RUN/modelgate-endpoints-guardrails.yaml
MG_EXTRA_ARGS="--no-auth $MG_EXTRA_ARGS"
