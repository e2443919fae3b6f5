# bench profile "auth-limits-usage": issue 13's acceptance set-up. Every request carries an API key
# (`--api-keys`, authenticated once per request against the in-memory store), each endpoint has a per-user
# rate limit far above anything the load can reach (so it is counted on every request, never trips), and
# usage records go to a file in the run folder. Sourced by bench/run.sh (RUN, REPO, BENCH, MODELGATE set).

# the API key: minted into $RUN/api-keys (the manifest holds only its hash), the key itself for the load
mkdir -p "$RUN/api-keys"
"$MODELGATE" api-key create --principal bench@example.com --write "$RUN/api-keys" 2>"$RUN/api-key.out" >/dev/null
BENCH_API_KEY=$(sed -n 's/^API key (shown once, store it now): //p' "$RUN/api-key.out")
rm -f "$RUN/api-key.out"
if [[ -z $BENCH_API_KEY ]]; then
  echo "bench/profiles/auth-limits-usage.sh: could not mint an API key" >&2
  exit 2
fi

# the endpoints, each with a per-user limit of a billion calls a minute and usage tracking on
python3 - "$MG_CONF" "$RUN/modelgate-endpoints-auth-limits-usage.yaml" <<'PY'
import sys

text = open(sys.argv[1]).read()
gateway = ("  aiGateway:\n"
           "    rateLimits:\n"
           "      - {key: user, calls: 1000000000, renewalPeriod: minute}\n"
           "    usageTrackingConfig: {enabled: true}\n")
docs = [doc.replace("spec:\n", "spec:\n" + gateway, 1) if "kind: ServingEndpoint" in doc else doc
        for doc in text.split("\n---\n")]
open(sys.argv[2], "w").write("\n---\n".join(docs))
PY
MG_CONF=$RUN/modelgate-endpoints-auth-limits-usage.yaml
export MG_CONF

MG_EXTRA_ARGS="--api-keys $RUN/api-keys --usage-log $RUN/usage.jsonl $MG_EXTRA_ARGS"
NEW_PROXY_AUTH="Bearer $BENCH_API_KEY"
export NEW_PROXY_AUTH
