# bench profile "gateway": the workspace gateway's serving path (docs/workspace-gateway.md). The gateway is a
# `modelgate serve` process that serves every endpoint of its namespace itself, on one URL (no forwarding hop to
# the per-endpoint proxies), so its added cost over a per-endpoint proxy is having the namespace's other
# endpoints loaded: here 200 more endpoints (each with its own Secret, as the gateway's projected volume holds
# them), queried exactly like profile "plain" (model = bench-chat / bench-stream on the OpenAI route).
# `serve --management-namespace` would need an API server (the watch that loads the endpoints); `-f` with the
# same endpoints builds the same runtimes, so the request path measured is the same. Authentication is off, as
# in "plain" (the gateway's bearer auth is the per-endpoint proxies' too). Compare with MG_PROFILE=plain run
# just before or after on a quiet machine: issue 16 asks added p50 <= 0.3 ms and CPU/request <= 1.2x "plain".
# Sourced by bench/run.sh (RUN, REPO, MG_CONF, MG_SECRETS set).
GATEWAY_EXTRA_ENDPOINTS=${GATEWAY_EXTRA_ENDPOINTS:-200}
"$REPO/.venv/bin/python" - "$MG_CONF" "$RUN/modelgate-endpoints-gateway.yaml" "$MG_SECRETS" "$GATEWAY_EXTRA_ENDPOINTS" <<'PY'
import copy, os, sys, yaml
source, target, secrets, extra = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
docs = list(yaml.safe_load_all(open(source)))
chat = next(d for d in docs if d["metadata"]["name"] == "bench-chat")
for i in range(extra):
    doc = copy.deepcopy(chat)
    doc["metadata"]["name"] = f"team-endpoint-{i:03d}"
    entity = doc["spec"]["servedEntities"][0]
    entity["name"] = f"team-endpoint-{i:03d}-upstream"
    entity["externalModel"]["openaiConfig"]["openaiApiKey"] = f"{{{{secrets/team-creds-{i:03d}/api-key}}}}"
    os.makedirs(f"{secrets}/team-creds-{i:03d}", exist_ok=True)
    with open(f"{secrets}/team-creds-{i:03d}/api-key", "w") as f:
        f.write(f"sk-team-{i:03d}-not-a-real-key\n")
    docs.append(doc)
yaml.safe_dump_all(docs, open(target, "w"))
PY
export MG_CONF=$RUN/modelgate-endpoints-gateway.yaml
MG_EXTRA_ARGS="--no-auth $MG_EXTRA_ARGS"
NEW_PROXY_NAME="modelgate gateway (1 worker, $((GATEWAY_EXTRA_ENDPOINTS + 2)) endpoints on one URL)"
export NEW_PROXY_NAME
