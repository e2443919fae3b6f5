# bench profile "payload-table": payload logging to the Delta table on both bench endpoints (inferenceTableConfig
# on, usage tracking off), under a local table root in the run folder, with a spill directory: exactly issue 17's
# line ("with payload logging to the Delta table on, requests/s >= 0.8x the same run with logging off"); compare
# with profile "plain". Profile "tables" adds usage tracking and its two tables (the stricter check).
# Sourced by bench/run.sh (RUN, REPO, MG_CONF set).
"$REPO/.venv/bin/python" - "$MG_CONF" "$RUN/modelgate-endpoints-payload-table.yaml" <<'PY'
import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
for doc in docs:
    doc["spec"]["aiGateway"] = {
        "inferenceTableConfig": {"enabled": True, "catalogName": "bench", "schemaName": "gw"},
    }
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
export MG_CONF=$RUN/modelgate-endpoints-payload-table.yaml
MG_EXTRA_ARGS="--no-auth $MG_EXTRA_ARGS --table-root $RUN/tables --table-spill-dir $RUN/table-spill"
