"""The report of bench/paired.sh: two modelgate profiles measured side by side in interleaved pairs (stdlib only).

    python3 bench/paired_report.py bench/results/paired-<timestamp>

Why pairs: the machine's speed drifts by 20-60 % over a minute, so figures of two separate runs do not compare;
within one pair (A's phase and B's phase, seconds apart) the drift is nearly the same for both and cancels in the
ratio B/A. This report therefore judges the per-pair ratios, never a ratio of two medians.

The run folder holds ``meta.txt`` (a=, b=, clk_tck=, ...), ``pairs.txt`` (one line per pair: its order and each
modelgate's process-group CPU ticks over the pair's window), the wrk output of every phase,
``raw/p<NN>_<a|b>.thr`` and its warm-up ``.warm`` (the shared harness's post.lua ``RESULT`` line) and ``load.txt``.
For each pair: each profile's requests/s (the measured phase) and CPU µs/request (the window's ticks over all its
requests in that window, warm-up included, since the window's CPU is theirs), and the ratios B/A. Then, per
figure: the median of the per-pair ratios, the interquartile range of the ratios, and a bootstrap 95 % interval of
that median (resampling the pairs, fixed seed); the verdicts of the acceptance lines between the two profiles
(compare_report.RULES, judged on the median); for an A/A run (the same profile twice) the control: whether the
interval holds 1.00. Errors (non-2xx, socket errors, a phase without a result, a modelgate that died, fewer pairs
than planned) flag the run.
Exit status: 0, or 1 when a line misses or the run is flagged, 2 without data.
"""

from __future__ import annotations

import contextlib
import random
import re
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compare_report import RULES, Rule

SLOTS = ("a", "b")
FIGURES: tuple[tuple[str, str], ...] = (("cpu_us", "CPU µs/request"), ("rps", "requests/s"))
ERROR_FIELDS = ("non2xx", "connect_err", "read_err", "write_err", "timeout_err")
BOOTSTRAP_ROUNDS = 4000
BOOTSTRAP_SEED = 17


@dataclass(frozen=True)
class Phase:
    """One wrk run as post.lua reports it."""

    requests: int
    seconds: float
    rps: float
    errors: int


@dataclass
class Pair:
    number: int
    order: str
    ticks: dict[str, int]
    seconds: float | None
    alive: bool
    thr: dict[str, Phase | None]
    warm: dict[str, Phase | None]

    def cpu_us(self, slot: str, clk_tck: int) -> float | None:
        """The slot's CPU µs per request over the pair's window: all its ticks over all its requests (warm-up too)."""
        thr, warm = self.thr.get(slot), self.warm.get(slot)
        if thr is None or slot not in self.ticks:
            return None
        requests = thr.requests + (warm.requests if warm else 0)
        return None if requests == 0 else self.ticks[slot] * 1e6 / clk_tck / requests

    def rps(self, slot: str) -> float | None:
        thr = self.thr.get(slot)
        return None if thr is None else thr.rps

    def value(self, slot: str, key: str, clk_tck: int) -> float | None:
        return self.cpu_us(slot, clk_tck) if key == "cpu_us" else self.rps(slot)

    def ratio(self, key: str, clk_tck: int) -> float | None:
        a, b = self.value("a", key, clk_tck), self.value("b", key, clk_tck)
        return None if a is None or b is None or a == 0 else b / a

    def errors(self) -> list[str]:
        out = []
        for slot in SLOTS:
            for kind, phase in (("phase", self.thr.get(slot)), ("warm-up", self.warm.get(slot))):
                if phase is None and (kind == "phase" or slot in self.warm):
                    out.append(f"pair {self.number} {slot}: {kind} has no wrk result")
                elif phase is not None and phase.errors:
                    out.append(f"pair {self.number} {slot}: {phase.errors} failed requests in the {kind}")
        if not self.alive:
            out.append(f"pair {self.number}: a modelgate had exited by its end")
        return out


@dataclass(frozen=True)
class Spread:
    median: float
    q1: float
    q3: float
    low: float
    high: float
    """The bootstrap 95 % interval of the median."""
    n: int


def _kv(text: str) -> dict[str, str]:
    return dict(re.findall(r"(\w+)=(\S+)", text))


def parse_phase(path: Path) -> Phase | None:
    """post.lua's RESULT line, or None when the file or the line is missing (wrk failed or was stopped)."""
    try:
        line = next((ln for ln in path.read_text().splitlines() if ln.startswith("RESULT ")), None)
    except FileNotFoundError:
        return None
    if line is None:
        return None
    kv = _kv(line)
    return Phase(int(kv["requests"]), float(kv["duration_s"]), float(kv["rps"]),
                 sum(int(kv.get(f, "0")) for f in ERROR_FIELDS))


def load_pairs(run: Path) -> list[Pair]:
    pairs = []
    with contextlib.suppress(FileNotFoundError):
        for line in (run / "pairs.txt").read_text().splitlines():
            kv = _kv(line)
            if "pair" not in kv:
                continue
            n = int(kv["pair"])
            stem = f"p{n:02d}"
            warm = {s: parse_phase(run / "raw" / f"{stem}_{s}.warm") for s in SLOTS
                    if (run / "raw" / f"{stem}_{s}.warm").exists()}
            pairs.append(Pair(
                number=n, order=kv.get("order", "?"),
                ticks={s: int(kv[f"ticks_{s}"]) for s in SLOTS if kv.get(f"ticks_{s}", "").lstrip("-").isdigit()},
                seconds=float(kv["seconds"]) if re.fullmatch(r"[\d.]+", kv.get("seconds", "")) else None,
                alive=kv.get("alive", "11") == "11",
                thr={s: parse_phase(run / "raw" / f"{stem}_{s}.thr") for s in SLOTS},
                warm=warm))
    return pairs


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0])
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return (q1, q3)


def bootstrap_median(values: Sequence[float], rounds: int = BOOTSTRAP_ROUNDS, seed: int = BOOTSTRAP_SEED,
                     level: float = 0.95) -> tuple[float, float]:
    """A percentile bootstrap interval of the median: the values resampled with replacement ``rounds`` times."""
    rng = random.Random(seed)  # noqa: S311 (resampling, not cryptography)
    meds = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(rounds))
    tail = (1 - level) / 2
    return (meds[int(tail * (rounds - 1))], meds[round((1 - tail) * (rounds - 1))])


def spread(values: Sequence[float | None]) -> Spread | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    q1, q3 = quartiles(present)
    low, high = bootstrap_median(present)
    return Spread(statistics.median(present), q1, q3, low, high, len(present))


class Paired:
    def __init__(self, meta: dict[str, str], pairs: Sequence[Pair]) -> None:
        self.a = meta.get("a", "a")
        self.b = meta.get("b", "b")
        self.clk_tck = int(meta.get("clk_tck", "100"))
        self.meta = meta
        self.pairs = list(pairs)

    def values(self, slot: str, key: str) -> list[float | None]:
        return [p.value(slot, key, self.clk_tck) for p in self.pairs]

    def ratios(self, key: str) -> list[float | None]:
        return [p.ratio(key, self.clk_tck) for p in self.pairs]

    def spread(self, key: str) -> Spread | None:
        return spread(self.ratios(key))

    def errors(self) -> list[str]:
        return [e for p in self.pairs for e in p.errors()]

    def by_speed(self, key: str) -> tuple[float | None, float | None]:
        """The median ratio in the pairs where the machine ran faster than in the median pair, and in the others: a
        check whether the ratio depends on the machine's state at the time. A pair's speed is the geometric mean of
        both proxies' requests/s (A's alone would not do: a pair where A was fast by chance has a low B/A by
        construction, so even an A/A run would show a difference)."""
        rated = []
        for p in self.pairs:
            a, b, r = p.rps("a"), p.rps("b"), p.ratio(key, self.clk_tck)
            if a is not None and b is not None and r is not None:
                rated.append(((a * b) ** 0.5, r))
        if len(rated) < 2:
            return (None, None)
        mid = statistics.median(speed for speed, _ in rated)
        fast = [r for speed, r in rated if speed > mid]
        slow = [r for speed, r in rated if speed <= mid]
        return (statistics.median(fast) if fast else None, statistics.median(slow) if slow else None)

    def rules(self) -> tuple[Rule, ...]:
        return tuple(r for r in RULES.get((self.a, self.b), ()) if r.how == "ratio" and r.key in dict(FIGURES))

    def verdicts(self) -> list[tuple[Rule, Spread | None, bool | None, bool | None]]:
        """(rule, spread of its ratio, pass on the median, whether the whole interval is on the median's side of
        the line)."""
        out: list[tuple[Rule, Spread | None, bool | None, bool | None]] = []
        for rule in self.rules():
            s = self.spread(rule.key)
            if s is None:
                out.append((rule, None, None, None))
            else:
                ok = rule.ok(s.median, rule.limit)
                out.append((rule, s, ok, rule.ok(s.low, rule.limit) == ok and rule.ok(s.high, rule.limit) == ok))
        return out

    def missing(self) -> str | None:
        """What is missing when the run ended before its planned pairs (interrupted, or a modelgate died)."""
        planned = self.meta.get("pairs", "")
        if planned.isdigit() and len(self.pairs) < int(planned):
            return f"only {len(self.pairs)} of {planned} pairs ran"
        return None

    def failed(self) -> bool:
        return bool(self.errors()) or self.missing() is not None or any(ok is False for _, _, ok, _ in self.verdicts())


def fmt(v: float | None, nd: int = 0) -> str:
    return "n/a" if v is None else f"{v:,.{nd}f}"


def _load_avg(run: Path) -> tuple[str, str]:
    try:
        found = re.findall(r"load average: ([\d.]+, [\d.]+, [\d.]+)", (run / "load.txt").read_text())
    except FileNotFoundError:
        return ("n/a", "n/a")
    return (found[0] if found else "n/a", found[-1] if len(found) > 1 else "n/a")


def _hashes(run: Path) -> list[str]:
    try:
        return re.findall(r"proxy source hash \w+:\s+(\S+)", (run / "modelgate-versions.txt").read_text())
    except FileNotFoundError:
        return []


def render(run: Path, pd: Paired) -> list[str]:
    m = pd.meta
    lines = [f"### Paired run: a = {pd.a}, b = {pd.b}", "",
             f"{len(pd.pairs)} pairs of {m.get('phase_s', '?')} s phases (each after a {m.get('warm_s', '?')} s "
             f"warm-up), {m.get('conns', '?')} connections, orders AB BA BA AB ...; both modelgates running "
             "throughout. CPU µs/request: each modelgate's process-group ticks over the pair's window (both phases) "
             "over its requests in it (warm-up included). Ratios are b/a within each pair.", "",
             f"| pair | order | {pd.a} req/s | {pd.b} req/s | {pd.a} CPU µs/req | {pd.b} CPU µs/req "
             "| req/s b/a | CPU/req b/a | seconds |", "|---|---|---|---|---|---|---|---|---|"]
    for p in pd.pairs:
        lines.append(f"| {p.number} | {p.order.upper()} | {fmt(p.rps('a'))} | {fmt(p.rps('b'))} "
                     f"| {fmt(p.cpu_us('a', pd.clk_tck))} | {fmt(p.cpu_us('b', pd.clk_tck))} "
                     f"| {fmt(p.ratio('rps', pd.clk_tck), 3)} | {fmt(p.ratio('cpu_us', pd.clk_tck), 3)} "
                     f"| {fmt(p.seconds, 1)} |")
    lines += ["", "| figure | a median (min-max) | b median (min-max) | median of b/a | interquartile range of b/a "
              "| bootstrap 95 % interval of the median | pairs |", "|---|---|---|---|---|---|---|"]
    for key, label in FIGURES:
        cells = []
        for slot in SLOTS:
            vals = [v for v in pd.values(slot, key) if v is not None]
            cells.append(f"{fmt(statistics.median(vals))} ({fmt(min(vals))}-{fmt(max(vals))})" if vals else "n/a")
        s = pd.spread(key)
        if s is None:
            lines.append(f"| {label} | {cells[0]} | {cells[1]} | n/a | n/a | n/a | 0 |")
        else:
            lines.append(f"| {label} | {cells[0]} | {cells[1]} | {s.median:.3f}x | {s.q1:.3f}-{s.q3:.3f} "
                         f"| {s.low:.3f}-{s.high:.3f} | {s.n} |")
    lines.append("")
    for key, label in FIGURES:
        fast, slow = pd.by_speed(key)
        if fast is not None and slow is not None:
            lines.append(f"{label} b/a in the faster half of the pairs (by both proxies' requests/s): {fast:.3f}x; "
                         f"in the slower half: {slow:.3f}x (a difference means the ratio depends on the machine's "
                         "state).")
    verdicts = pd.verdicts()
    if verdicts:
        lines += ["", "| acceptance line | median of b/a | 95 % interval | verdict (on the median) "
                  "| interval clear of the line |", "|---|---|---|---|---|"]
        for rule, s, ok, clear in verdicts:
            verdict = "n/a" if ok is None else ("pass" if ok else "**MISS**")
            clear_text = "n/a" if clear is None else ("no: within the noise" if not clear else
                                                      ("yes" if ok else "yes: a clear miss"))
            lines.append(f"| {rule.text} | {fmt(s.median if s else None, 3)}x "
                         f"| {f'{s.low:.3f}-{s.high:.3f}' if s else 'n/a'} | {verdict} | {clear_text} |")
    elif pd.a != pd.b:
        lines += ["", f"No acceptance line compares {pd.a} with {pd.b} (compare_report.RULES)."]
    if pd.a == pd.b:
        lines.append("")
        for key, label in FIGURES:
            s = pd.spread(key)
            if s is not None:
                holds = s.low <= 1.0 <= s.high
                lines.append(f"A/A control, {label}: median b/a {s.median:.3f}x, interquartile range "
                             f"{s.q1:.3f}-{s.q3:.3f}, 95 % interval {s.low:.3f}-{s.high:.3f}: "
                             f"{'holds 1.00' if holds else '**does not hold 1.00** (a bias between the slots)'}.")
    before, after = _load_avg(run)
    lines += ["", f"Load average (1, 5, 15 min) before: {before}; after: {after}."]
    hashes = _hashes(run)
    if len(set(hashes)) > 1:
        lines.append(f"Note: the proxy's source changed during the run (hash {' -> '.join(hashes)}).")
    errors = pd.errors()
    missing = pd.missing()
    if missing:
        errors.append(missing)
    lines += ["", "Errors: " + ("none (non-2xx and socket errors 0 in every phase)." if not errors else
                                "**FLAGGED**: " + "; ".join(errors) + ".")]
    return lines


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    run = Path(argv[0])
    meta: dict[str, str] = {}
    with contextlib.suppress(FileNotFoundError):
        meta = _kv((run / "meta.txt").read_text())
    pairs = load_pairs(run) if run.is_dir() else []
    if not pairs:
        print(f"no paired results in {run} (expected meta.txt, pairs.txt and raw/p<NN>_<a|b>.thr)")
        return 2
    pd = Paired(meta, pairs)
    print("\n".join(render(run, pd)))
    return 1 if pd.failed() else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
