# Sourced by bench/run.sh and bench/paired.sh: what a bench run records about itself, so that both record the same.
# Needs REPO and RUN set.
#   run_versions FILE     modelgate's version and commit (+dirty), its main dependencies, the venv's Python
#   load_snapshot LABEL   `uptime` and the busiest processes, appended to $RUN/load.txt
#   code_hash             a hash of the proxy's source (proxy/**/*.py): an edit during the run shows as a change
run_versions() {  # file
  {
    echo "modelgate: $("$REPO/.venv/bin/python" -c 'import importlib.metadata as m;print(m.version("modelgate"))' 2>/dev/null) (git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)$(git -C "$REPO" diff --quiet 2>/dev/null || echo '+dirty'))"
    echo "modelgate deps: $("$REPO/.venv/bin/python" -c 'import importlib.metadata as m;print(" ".join(p+"-"+m.version(p) for p in ["starlette","uvicorn","uvloop","httptools","aiohttp","orjson","pydantic"]))' 2>/dev/null)"
    echo "python (modelgate venv): $("$REPO/.venv/bin/python" -c 'import sys;print(sys.version.split()[0])')"
  } >"$1"
}
load_snapshot() {  # label
  {
    echo "== $1 $(date -Is)"
    uptime
    top -bn1 -o %CPU | sed -n '7,14p'
  } >>"$RUN/load.txt" 2>&1 || true
}
code_hash() {
  (cd "$REPO" && find proxy -name '*.py' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)
}
