# bench profile "plain": the proxy core only (no authentication, rate limits or records), the figure the
# earlier runs in RESULTS.md measured. Sourced by bench/run.sh.
MG_EXTRA_ARGS="$MG_EXTRA_ARGS"
