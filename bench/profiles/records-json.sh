# bench profile "records-json": the same records as profile "tables" (usage tracking and payload logging on both
# bench endpoints), as JSON lines to /dev/null instead of Delta tables: with "tables" and "plain", it separates
# what the record stages cost from what the Delta writer costs. Sourced by bench/run.sh (RUN, REPO, MG_CONF set).
source "$REPO/bench/profiles/tables.sh"
MG_EXTRA_ARGS="${MG_EXTRA_ARGS%% --table-root*} --usage-log /dev/null --payload-log /dev/null"
