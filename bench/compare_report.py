"""The combined report of bench/compare.sh: several modelgate profiles measured in one run (stdlib only).

    python3 bench/compare_report.py bench/results/compare-<timestamp> [PROFILE ...]

The run folder holds one bench/run.sh result per call, ``r<round>-<profile>/`` (the harness's ``raw/r1_*`` files:
each call is one harness round), ``calls.txt`` (round, profile, exit, seconds per call) and ``profiles.txt``
(the profiles, the reference first; PROFILE arguments override it). For each profile and figure it prints the
value per round, the median over rounds, the median of the per-round ratios to the same call's ``thin-aiohttp``,
and the median of the per-round ratios to (and differences from) the reference profile in the same round. A
round where a target failed counts as missing for that round only, and is listed. Then the verdicts of the
acceptance lines that compare two profiles (:data:`RULES`, judged on those medians; a ratio line also on the
ratio of the two profiles' figures each divided by its own call's ``thin-aiohttp``, which takes out the machine's
drift between calls), the baselines and the machine load per call. Exit status: 0, or 1 when a rule misses or a modelgate target failed, 2 without data.
"""

from __future__ import annotations

import contextlib
import operator
import re
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from acceptance import Figures, figures

NEW = "new"
FORWARDER = "thin-aiohttp"
FIGURES: tuple[tuple[str, str, int], ...] = (
    ("rps", "requests/s @64 conn", 0),
    ("cpu_us", "CPU µs/request @64 conn", 0),
    ("p50_1c_us", "p50 @1 conn (µs)", 0),
    ("p99_1c_us", "p99 @1 conn (µs)", 0),
    ("ttfb_1c_us", "TTFB p50, streaming @1 conn (µs)", 0),
    ("streams_s", "streams/s @16 conn", 0),
    ("rss_mib", "RSS after the runs (MiB)", 1),
    ("errors", "errors (non-2xx, socket, failed streams)", 0),
)


@dataclass(frozen=True)
class Rule:
    key: str
    how: str  # "ratio" (profile / reference) or "diff" (profile - reference), same round, median over rounds
    limit: float
    ok: Callable[[float, float], bool]
    text: str


RULES: dict[tuple[str, str], tuple[Rule, ...]] = {
    ("endpoint-proxy", "gateway"): (
        Rule("p50_1c_us", "diff", 300.0, operator.le, "issue 16: added p50 @1 conn <= 300 µs over the endpoint's proxy"),
        Rule("cpu_us", "ratio", 1.2, operator.le, "issue 16: CPU µs/request <= 1.2x the endpoint's proxy"),
    ),
    ("plain", "payload-table"): (
        Rule("rps", "ratio", 0.8, operator.ge, "issue 17: requests/s >= 0.8x logging off (payload table)"),
    ),
    ("plain", "tables"): (
        Rule("rps", "ratio", 0.8, operator.ge, "issue 17, stricter: requests/s >= 0.8x with usage tables too"),
    ),
    ("plain", "tracing"): (Rule("cpu_us", "ratio", 1.3, operator.le, "issue 17: CPU µs/request <= 1.3x tracing off"),),
}
"""(reference, profile) -> the acceptance lines that compare them."""


@dataclass
class Call:
    """One bench/run.sh call: one profile in one round."""

    round: int
    profile: str
    targets: dict[str, Figures | None] = field(default_factory=dict)
    """target -> figures, None when it ran and failed."""
    load: tuple[float | None, float | None] = (None, None)
    """1-minute load average before and after the call."""
    seconds: int | None = None
    exit: int | None = None


def median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def value(call: Call | None, target: str, key: str) -> float | None:
    if call is None:
        return None
    f = call.targets.get(target)
    return None if f is None else f.get(key)


class Comparison:
    def __init__(self, calls: Sequence[Call], profiles: Sequence[str]) -> None:
        self.profiles = list(profiles)
        self.reference = self.profiles[0]
        self.rounds = sorted({c.round for c in calls})
        self.calls = {(c.round, c.profile): c for c in calls}

    def call(self, rnd: int, profile: str) -> Call | None:
        return self.calls.get((rnd, profile))

    def per_round(self, profile: str, key: str, target: str = NEW) -> list[float | None]:
        return [value(self.call(r, profile), target, key) for r in self.rounds]

    def vs_forwarder(self, profile: str, key: str) -> list[float | None]:
        """Per round: the profile's figure over the same call's thin-aiohttp."""
        return [ratio(value(c, NEW, key), value(c, FORWARDER, key))
                for c in (self.call(r, profile) for r in self.rounds)]

    def vs_reference(self, profile: str, key: str, how: str = "ratio") -> list[float | None]:
        """Per round: the profile's figure over (or minus) the reference profile's in the same round."""
        op = ratio if how == "ratio" else diff
        return [op(value(self.call(r, profile), NEW, key), value(self.call(r, self.reference), NEW, key))
                for r in self.rounds]

    def vs_reference_normalised(self, profile: str, key: str) -> list[float | None]:
        """Per round: the profile's figure over the reference's, each first divided by its own call's thin-aiohttp
        (the machine's speed drifts between calls a minute apart; the forwarder measured in each call cancels it)."""
        return [ratio(a, b) for a, b in zip(self.vs_forwarder(profile, key), self.vs_forwarder(self.reference, key),
                                            strict=True)]

    def failures(self) -> list[str]:
        out = []
        for r in self.rounds:
            for p in self.profiles:
                c = self.call(r, p)
                if c is None:
                    out.append(f"round {r} {p}: no result (the call did not run)")
                    continue
                out += [f"round {r} {p}: {t} failed (see r{r}-{p}/logs/)" for t, f in c.targets.items() if f is None]
                if NEW not in c.targets:
                    out.append(f"round {r} {p}: modelgate has no result (see r{r}-{p}.log)")
        return out

    def verdicts(self) -> list[tuple[str, Rule, float | None, bool | None]]:
        """(profile, rule, median, pass) for each rule between the reference and a profile of this run."""
        out = []
        for p in self.profiles[1:]:
            for rule in RULES.get((self.reference, p), ()):
                m = median(self.vs_reference(p, rule.key, rule.how))
                out.append((p, rule, m, None if m is None else rule.ok(m, rule.limit)))
        return out

    def normalised_verdicts(self) -> list[tuple[str, Rule, float | None, bool | None]]:
        """The ratio rules again, judged on :meth:`vs_reference_normalised` (the drift between calls taken out)."""
        out = []
        for p in self.profiles[1:]:
            for rule in RULES.get((self.reference, p), ()):
                if rule.how == "ratio":
                    m = median(self.vs_reference_normalised(p, rule.key))
                    out.append((p, rule, m, None if m is None else rule.ok(m, rule.limit)))
        return out


def load_calls(run: Path) -> list[Call]:
    info: dict[tuple[int, str], dict[str, str]] = {}
    try:
        for line in (run / "calls.txt").read_text().splitlines():
            kv = dict(re.findall(r"(\w+)=(\S+)", line))
            if "round" in kv and "profile" in kv:
                info[(int(kv["round"]), kv["profile"])] = kv
    except FileNotFoundError:
        pass
    calls = []
    for d in sorted(run.iterdir()):
        m = re.fullmatch(r"r(\d+)-(.+)", d.name)
        if not (m and d.is_dir()):
            continue
        call = Call(int(m.group(1)), m.group(2))
        for meta in sorted((d / "raw").glob("r*_*.meta")):
            t = re.fullmatch(r"r(\d+)_(.+)\.meta", meta.name)
            if t:
                call.targets[t.group(2)] = figures(d / "raw", int(t.group(1)), t.group(2))
        call.load = _load(d / "load.txt")
        kv = info.get((call.round, call.profile), {})
        call.seconds = int(kv["seconds"]) if kv.get("seconds", "").isdigit() else None
        call.exit = int(kv["exit"]) if kv.get("exit", "").isdigit() else None
        calls.append(call)
    return calls


def _load(path: Path) -> tuple[float | None, float | None]:
    try:
        found = re.findall(r"load average: ([\d.]+)", path.read_text())
    except FileNotFoundError:
        return (None, None)
    return (float(found[0]) if found else None, float(found[-1]) if len(found) > 1 else None)


def fmt(v: float | None, nd: int = 0) -> str:
    return "n/a" if v is None else f"{v:,.{nd}f}"


def _ratios(vals: Sequence[float | None]) -> str:
    return f"{fmt(median(vals), 2)}x ({' / '.join(fmt(v, 2) for v in vals)})"


def render(cmp: Comparison) -> list[str]:
    ref = cmp.reference
    orders = []
    for r in cmp.rounds:
        ps = [p for p in cmp.profiles if cmp.call(r, p)]
        orders.append(f"r{r}: {' -> '.join(ps if r % 2 else list(reversed(ps)))}")
    lines = [f"### Profiles in one run: {', '.join(cmp.profiles)} (reference: {ref})", "",
             f"Rounds {'; '.join(orders)}. Values per round (r1 / r2 / ...), the median over rounds, and the median of "
             f"the per-round ratios to the same call's {FORWARDER} and to {ref} in the same round.", "",
             f"| figure | profile | per round | median | x {FORWARDER} (same call) | x {ref} (same round) "
             f"| - {ref} (same round) |", "|---|---|---|---|---|---|---|"]
    for key, label, nd in FIGURES:
        for p in cmp.profiles:
            vals = cmp.per_round(p, key)
            fw = _ratios(cmp.vs_forwarder(p, key)) if key != "errors" else ""
            vs = _ratios(cmp.vs_reference(p, key)) if p != ref and key != "errors" else ""
            dv = cmp.vs_reference(p, key, "diff")
            dd = f"{fmt(median(dv), nd)} ({' / '.join(fmt(v, nd) for v in dv)})" if p != ref else ""
            lines.append(f"| {label} | {p} | {' / '.join(fmt(v, nd) for v in vals)} | {fmt(median(vals), nd)} "
                         f"| {fw} | {vs} | {dd} |")
    verdicts = [(v, "same round") for v in cmp.verdicts()]
    verdicts += [(v, f"each call over its own {FORWARDER}") for v in cmp.normalised_verdicts()]
    if verdicts:
        lines += ["", "| acceptance line | profile | judged on | median over rounds (per round) | verdict |",
                  "|---|---|---|---|---|"]
        for (p, rule, m, ok), basis in verdicts:
            verdict = "n/a" if ok is None else ("pass" if ok else "**MISS**")
            if rule.how == "ratio":
                per = cmp.vs_reference(p, rule.key) if basis == "same round" else cmp.vs_reference_normalised(p, rule.key)
                shown = _ratios(per)
            else:
                shown = f"{fmt(m)} µs"
            lines.append(f"| {rule.text} | {p} | {basis} | {shown} | {verdict} |")
    lines += ["", "| call | modelgate | thin-aiohttp req/s | thin-aiohttp CPU µs/req | direct p50 @1 conn (µs) "
              "| load (1 min) before -> after | seconds | run.sh exit |", "|---|---|---|---|---|---|---|---|"]
    for r in cmp.rounds:
        for p in cmp.profiles:
            c = cmp.call(r, p)
            if c is None:
                continue
            state = "failed" if c.targets.get(NEW, None) is None else "ok"
            lines.append(f"| r{r} {p} | {state} | {fmt(value(c, FORWARDER, 'rps'))} | {fmt(value(c, FORWARDER, 'cpu_us'))} "
                         f"| {fmt(value(c, 'direct', 'p50_1c_us'))} | {fmt(c.load[0], 2)} -> {fmt(c.load[1], 2)} "
                         f"| {fmt(c.seconds)} | {fmt(c.exit)} |")
    failures = cmp.failures()
    if failures:
        lines += ["", "Failed: " + "; ".join(failures) + "."]
    return lines


def main(argv: Sequence[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    run = Path(argv[0])
    profiles = list(argv[1:])
    if not profiles:
        with contextlib.suppress(FileNotFoundError):
            profiles = (run / "profiles.txt").read_text().split()
    calls = load_calls(run) if run.is_dir() else []
    if not calls or not profiles:
        print(f"no comparison results in {run} (expected r<round>-<profile>/ folders and profiles.txt)")
        return 2
    cmp = Comparison(calls, profiles)
    print("\n".join(render(cmp)))
    missed = any(ok is False for *_, ok in [*cmp.verdicts(), *cmp.normalised_verdicts()])
    failed = any(value(cmp.call(r, p), NEW, "rps") is None for r in cmp.rounds for p in cmp.profiles)
    return 1 if missed or failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
