# bench profile "plain": the proxy core only (no authentication, rate limits or records), the figure the
# earlier runs in RESULTS.md measured. `serve` refuses to start without an authentication choice, so this
# profile opts out explicitly. Sourced by bench/run.sh.
MG_EXTRA_ARGS="--no-auth $MG_EXTRA_ARGS"
