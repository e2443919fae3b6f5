"""Check a benchmark run against modelgate's acceptance targets (stdlib only).

    python3 bench/acceptance.py bench/results/<timestamp>

Reads the raw files the shared harness writes (``raw/r<round>_<target>.{meta,thr,lat,sseq,sconc}``) and
prints a markdown table: for each figure, modelgate's value per round and the rule it must meet. The
reference is the faster of the two bare forwarders by mean requests/s (``thin-aiohttp`` in every run so
far). "Added" figures are target minus ``direct`` in the same round. A rule passes when it holds on the
mean over rounds.
"""

from __future__ import annotations

import operator
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

NEW = "new"
PEERS = ("litellm-1w", "mlflow-1w")
FORWARDERS = ("thin-aiohttp", "thin-httpx")
_KV = re.compile(r"(\w+)=([-\w.']+)")

Figures = dict[str, float]


def _tagged_line(path: Path, tag: str) -> dict[str, str]:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(tag + " "):
                return dict(_KV.findall(line))
    except FileNotFoundError:
        pass
    return {}


def _meta(path: Path) -> dict[str, str]:
    try:
        return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    except FileNotFoundError:
        return {}


def _float(d: dict[str, str], key: str) -> float | None:
    try:
        return float(d[key])
    except (KeyError, ValueError):
        return None


def figures(raw: Path, rnd: int, target: str) -> Figures | None:
    """The figures of one target in one round, or None when it did not run or failed."""
    base = raw / f"r{rnd}_{target}"
    meta = _meta(base.with_suffix(".meta"))
    if meta.get("status") != "ok":
        return None
    thr = _tagged_line(base.with_suffix(".thr"), "RESULT")
    lat = _tagged_line(base.with_suffix(".lat"), "RESULT")
    sseq = _tagged_line(base.with_suffix(".sseq"), "STREAM")
    sconc = _tagged_line(base.with_suffix(".sconc"), "STREAM")
    out: Figures = {}
    for name, src, key in (
        ("rps", thr, "rps"),
        ("p50_1c_us", lat, "p50_us"),
        ("p99_1c_us", lat, "p99_us"),
        ("ttfb_1c_us", sseq, "ttfb_p50_us"),
        ("streams_s", sconc, "rps"),
    ):
        v = _float(src, key)
        if v is not None:
            out[name] = v
    requests, ticks, hz, rss = (
        _float(thr, "requests"), _float(meta, "cpu_ticks"), _float(meta, "clk_tck"), _float(meta, "rss_kb"))
    if requests and ticks is not None and hz:
        out["cpu_us"] = ticks * 1e6 / hz / requests
    if rss is not None:
        out["rss_mib"] = rss / 1024
    errors = 0.0
    for src in (thr, lat):
        errors += sum(_float(src, k) or 0 for k in ("non2xx", "connect_err", "read_err", "write_err", "timeout_err"))
    for src in (sseq, sconc):
        errors += _float(src, "err") or 0
    out["errors"] = errors
    return out


def _added(runs: dict[str, dict[int, Figures]], target: str, key: str, rnd: int) -> float | None:
    t, d = runs.get(target, {}).get(rnd), runs.get("direct", {}).get(rnd)
    if t is None or d is None or key not in t or key not in d:
        return None
    return t[key] - d[key]


def main(run_dir: str) -> int:
    raw = Path(run_dir) / "raw"
    if not raw.is_dir():
        print(f"no raw results in {run_dir}")
        return 2
    runs: dict[str, dict[int, Figures]] = {}
    for meta in sorted(raw.glob("r*_*.meta")):
        m = re.fullmatch(r"r(\d+)_(.+)\.meta", meta.name)
        if m:
            f = figures(raw, int(m.group(1)), m.group(2))
            if f is not None:
                runs.setdefault(m.group(2), {})[int(m.group(1))] = f
    rounds = sorted({r for per in runs.values() for r in per})
    if NEW not in runs:
        print("modelgate (target `new`) has no successful run; see logs/ in the run folder")
        return 1

    def value(target: str, key: str, rnd: int) -> float | None:
        if key.startswith("added_"):
            return _added(runs, target, key.removeprefix("added_"), rnd)
        return runs.get(target, {}).get(rnd, {}).get(key)

    def mean(target: str, key: str) -> float | None:
        vals = [v for r in rounds if (v := value(target, key, r)) is not None]
        return statistics.fmean(vals) if vals else None

    ran = [f for f in FORWARDERS if mean(f, "rps") is not None]
    ref = max(ran, key=lambda f: mean(f, "rps") or 0.0) if ran else None

    def fmt(v: float | None, nd: int = 0) -> str:
        return "n/a" if v is None else f"{v:,.{nd}f}"

    def per_round(target: str, key: str, nd: int = 0) -> str:
        return " / ".join(fmt(value(target, key, r), nd) for r in rounds)

    rows: list[tuple[str, str, str, str, bool | None]] = []  # figure, modelgate per round, rule, basis, pass

    def rule(label: str, key: str, lim: float | None, ok: Callable[[float, float], bool], text: str,
             nd: int = 0) -> None:
        mine = mean(NEW, key)
        verdict = None if mine is None or lim is None else ok(mine, lim)
        rows.append((label, per_round(NEW, key, nd), text, f"{fmt(mine, nd)} vs {fmt(lim, nd)}", verdict))

    if ref is not None:
        rule("requests/s @64 conn", "rps", _scaled(mean(ref, "rps"), 0.8), operator.ge, f">= 0.8 x {ref}")
        rule("CPU us/request @64 conn", "cpu_us", _scaled(mean(ref, "cpu_us"), 1.25), operator.le, f"<= 1.25 x {ref}")
    rule("added p50 @1 conn (us)", "added_p50_1c_us", 1000.0, operator.le, "<= 1,000 us over direct")
    rule("added TTFB p50, streaming @1 conn (us)", "added_ttfb_1c_us", 1000.0, operator.le, "<= 1,000 us over direct")
    rule("RSS after run (MiB)", "rss_mib", 80.0, operator.le, "<= 80 MiB", 1)
    for peer in PEERS:
        if peer not in runs:
            continue
        rule("requests/s @64 conn", "rps", mean(peer, "rps"), operator.gt, f"> {peer}")
        rule("CPU us/request @64 conn", "cpu_us", mean(peer, "cpu_us"), operator.lt, f"< {peer}")
        rule("added p50 @1 conn (us)", "added_p50_1c_us", mean(peer, "added_p50_1c_us"), operator.lt, f"< {peer}")
        rule("added TTFB p50 (us)", "added_ttfb_1c_us", mean(peer, "added_ttfb_1c_us"), operator.lt, f"< {peer}")
        rule("RSS after run (MiB)", "rss_mib", mean(peer, "rss_mib"), operator.lt, f"< {peer}", 1)

    rr = " / ".join(f"r{r}" for r in rounds)
    print(f"### modelgate acceptance (values per round: {rr}; verdict on the mean over rounds)\n")
    print("| figure | modelgate | rule | mean: modelgate vs limit | verdict |")
    print("|---|---|---|---|---|")
    for label, mine, text, basis, verdict in rows:
        print(f"| {label} | {mine} | {text} | {basis} | {_verdict(verdict)} |")
    errs = per_round(NEW, "errors")
    print(f"\nmodelgate errors per round (non-2xx, socket errors, failed streams): {errs}")
    return 0 if all(v is not False for *_, v in rows) else 1


def _scaled(v: float | None, factor: float) -> float | None:
    return None if v is None else v * factor


def _verdict(v: bool | None) -> str:
    return "n/a" if v is None else ("pass" if v else "**MISS**")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
