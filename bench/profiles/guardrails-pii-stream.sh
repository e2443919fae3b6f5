# bench profile "guardrails-pii-stream": output PII masking (aiGateway.guardrails.output.pii: MASK) on the
# streaming endpoint bench-stream, so the stream goes through the guardrails' bounded window
# (docs/guardrails.md); bench-chat stays plain. Compare its streaming TTFT with a "plain" run. Sourced by
# bench/run.sh (RUN, MG_CONF set): writes the endpoints with the guardrail into the run folder.
{
  cat "$MG_CONF"
  # bench-stream is the last document: these lines extend its spec.
  printf '  aiGateway:\n    guardrails:\n      output:\n        pii:\n          behavior: MASK\n'
} >"$RUN/modelgate-endpoints-guardrails.yaml"
MG_CONF=$RUN/modelgate-endpoints-guardrails.yaml
MG_EXTRA_ARGS="--no-auth $MG_EXTRA_ARGS"
