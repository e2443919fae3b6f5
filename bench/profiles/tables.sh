# bench profile "tables": payload logging and usage tracking on both bench endpoints, written as Delta tables
# under a local table root in the run folder (docs/records.md), with a spill directory; JSON-line records off
# (the default with --table-root). Compare with profile "plain": issue 17 asks requests/s >= 0.8x.
# Sourced by bench/run.sh (RUN, REPO, MG_CONF set).
"$REPO/.venv/bin/python" - "$MG_CONF" "$RUN/modelgate-endpoints-tables.yaml" <<'PY'
import sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
for doc in docs:
    doc["spec"]["aiGateway"] = {
        "usageTrackingConfig": {"enabled": True},
        "inferenceTableConfig": {"enabled": True, "catalogName": "bench", "schemaName": "gw"},
    }
yaml.safe_dump_all(docs, open(sys.argv[2], "w"))
PY
export MG_CONF=$RUN/modelgate-endpoints-tables.yaml
MG_EXTRA_ARGS="--no-auth $MG_EXTRA_ARGS --table-root $RUN/tables --table-spill-dir $RUN/table-spill"
