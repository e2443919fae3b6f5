"""bench/paired_report.py, the report of bench/paired.sh, on run folders written here in its format: per-pair CPU
µs/request (the window's ticks over the phase's and warm-up's requests) and requests/s, the median of the per-pair
ratios and its spread, the verdicts of issue 17's lines, the A/A control, the error flags and the exit status."""

from __future__ import annotations

from pathlib import Path

import pytest

from .bench_scripts import load

report = load("paired_report")

CLK_TCK = 100
PHASE_S = 5
WARM_S = 1


def _wrk(path: Path, rps: float, seconds: int, errors: int = 0) -> int:
    requests = int(rps * seconds)
    path.write_text(
        f"RESULT requests={requests} duration_s={seconds}.000 rps={rps:.1f} p50_us=9000 p90_us=1 p99_us=1 max_us=1 "
        f"mean_us=1 non2xx={errors} connect_err=0 read_err=0 write_err=0 timeout_err=0 bytes=1\n")
    return requests


def _run(tmp: Path, a: str, b: str, pairs: list[tuple[tuple[float, float], tuple[float, float]]],
         errors_in: tuple[int, str] | None = None, dead: int | None = None) -> Path:
    """One run folder: per pair ((a rps, a CPU µs/request), (b rps, b CPU µs/request)), the warm-up at the same rps;
    ``errors_in=(pair, slot)``: 3 non-2xx in that phase; ``dead``: that pair ends with a modelgate gone."""
    (tmp / "raw").mkdir(parents=True)
    (tmp / "meta.txt").write_text(f"a={a}\nb={b}\npairs={len(pairs)}\nphase_s={PHASE_S}\nwarm_s={WARM_S}\n"
                                  f"conns=64\nclk_tck={CLK_TCK}\n")
    (tmp / "load.txt").write_text("== before\n 15:00:00 up 1 day,  load average: 0.50, 0.40, 0.30\n"
                                  "== after\n 15:03:00 up 1 day,  load average: 1.90, 1.20, 0.60\n")
    lines = []
    for n, figs in enumerate(pairs, start=1):
        ticks = {}
        for slot, (rps, cpu_us) in zip("ab", figs, strict=True):
            errs = 3 if errors_in == (n, slot) else 0
            requests = _wrk(tmp / "raw" / f"p{n:02d}_{slot}.thr", rps, PHASE_S, errs)
            requests += _wrk(tmp / "raw" / f"p{n:02d}_{slot}.warm", rps, WARM_S)
            ticks[slot] = round(cpu_us * requests * CLK_TCK / 1e6)
        alive = "10" if dead == n else "11"
        lines.append(f"pair={n} order=ab ticks_a={ticks['a']} ticks_b={ticks['b']} seconds=13.1 alive={alive}")
    (tmp / "pairs.txt").write_text("\n".join(lines) + "\n")
    return tmp


def _drifting(ratio_cpu: float, ratio_rps: float, n: int = 8) -> list[tuple[tuple[float, float], tuple[float, float]]]:
    """n pairs whose machine speed drifts by up to 60 % from pair to pair, b/a constant within each pair."""
    out = []
    for i in range(n):
        speed = 1.0 + 0.6 * ((i * 37) % 10) / 10
        a = (1000.0 / speed, 400.0 * speed)
        out.append((a, (a[0] * ratio_rps, a[1] * ratio_cpu)))
    return out


def _main(run: Path) -> int:
    return int(report.main([str(run)]))


def test_cpu_per_request_is_the_windows_ticks_over_phase_and_warm_up_requests(tmp_path: Path) -> None:
    run = _run(tmp_path, "plain", "tracing", [((1000, 400), (900, 500))])
    pair = report.load_pairs(run)[0]
    # 6000 requests (5 s + 1 s at 1000/s) at 400 µs = 240 ticks; 240 ticks / 6000 requests = 400 µs, not 480
    assert pair.ticks["a"] == 240
    assert pair.cpu_us("a", CLK_TCK) == pytest.approx(400)
    assert pair.cpu_us("b", CLK_TCK) == pytest.approx(500)
    assert pair.ratio("cpu_us", CLK_TCK) == pytest.approx(1.25)
    assert pair.ratio("rps", CLK_TCK) == pytest.approx(0.9)


def test_the_ratio_is_taken_within_pairs_so_drift_between_pairs_cancels(tmp_path: Path) -> None:
    run = _run(tmp_path, "plain", "tracing", _drifting(1.2, 0.9))
    pd = report.Paired(report._kv((run / "meta.txt").read_text()), report.load_pairs(run))
    cpu_a = [v for v in pd.values("a", "cpu_us") if v is not None]
    assert max(cpu_a) / min(cpu_a) > 1.4  # the machine drifted
    s = pd.spread("cpu_us")
    assert s is not None
    assert s.median == pytest.approx(1.2, abs=0.005)
    assert s.high - s.low < 0.01  # the drift does not reach the ratio
    assert s.q3 - s.q1 < 0.01
    assert s.n == 8


def test_median_quartiles_and_bootstrap_interval() -> None:
    values = [1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 2.5]
    s = report.spread([*values, None])
    assert s is not None
    assert s.n == 7
    assert s.median == pytest.approx(1.3)
    assert (s.q1, s.q3) == pytest.approx((1.15, 1.45))
    assert s.low <= s.median <= s.high
    assert values[0] <= s.low < s.median < s.high <= values[-1]
    assert report.bootstrap_median(values) == report.bootstrap_median(values)  # fixed seed: the same every time
    assert report.spread([None]) is None


def test_tracing_within_the_line_passes_and_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(tmp_path, "plain", "tracing", _drifting(1.2, 0.85))
    assert _main(run) == 0
    out = capsys.readouterr().out
    assert "| issue 17: CPU µs/request <= 1.3x tracing off | 1.20" in out
    assert "| pass | yes |" in out
    assert "before: 0.50, 0.40, 0.30; after: 1.90, 1.20, 0.60" in out
    assert "Errors: none" in out


def test_tracing_over_the_line_misses_and_exits_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(tmp_path, "plain", "tracing", _drifting(1.35, 1.0))
    assert _main(run) == 1
    assert "| **MISS** | yes: a clear miss |" in capsys.readouterr().out


def test_tables_rps_line_judged_on_rps_not_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # CPU per request doubles (no line for tables), requests/s at 0.82x: a pass
    assert _main(_run(tmp_path / "pass", "plain", "tables", _drifting(2.0, 0.82))) == 0
    assert "| issue 17, stricter: requests/s >= 0.8x with usage tables too | 0.820x |" in capsys.readouterr().out
    assert _main(_run(tmp_path / "miss", "plain", "tables", _drifting(1.0, 0.78))) == 1
    assert "**MISS**" in capsys.readouterr().out


def test_a_median_that_passes_with_an_interval_across_the_line_says_so(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    ratios = [1.20, 1.25, 1.28, 1.29, 1.31, 1.36, 1.40]
    pairs = [((1000.0, 400.0), (1000.0, 400.0 * r)) for r in ratios]
    assert _main(_run(tmp_path, "plain", "tracing", pairs)) == 0
    out = capsys.readouterr().out
    assert "| pass | no: within the noise |" in out


def test_errors_in_any_phase_flag_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(tmp_path, "plain", "tracing", _drifting(1.1, 1.0), errors_in=(3, "b"))
    assert _main(run) == 1
    assert "pair 3 b: 3 failed requests in the phase" in capsys.readouterr().out


def test_a_missing_result_or_a_dead_modelgate_flags_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(tmp_path / "missing", "plain", "plain", _drifting(1.0, 1.0))
    (run / "raw" / "p02_a.thr").write_text("wrk: connection refused\n")
    assert _main(run) == 1
    assert "pair 2 a: phase has no wrk result" in capsys.readouterr().out
    run = _run(tmp_path / "dead", "plain", "plain", _drifting(1.0, 1.0), dead=4)
    assert _main(run) == 1
    assert "pair 4: a modelgate had exited" in capsys.readouterr().out


def test_a_a_control_holds_one_or_shows_a_bias(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    even = [((1000.0, 400.0), (1000.0 * r, 400.0 / r)) for r in (0.98, 0.99, 1.0, 1.01, 1.02, 0.995, 1.005)]
    assert _main(_run(tmp_path / "even", "plain", "plain", even)) == 0
    out = capsys.readouterr().out
    assert "A/A control, CPU µs/request: median b/a 1.000x" in out
    assert "holds 1.00" in out
    biased = [((1000.0, 400.0), (1000.0, 400.0 * r)) for r in (1.08, 1.09, 1.1, 1.11, 1.12)]
    assert _main(_run(tmp_path / "biased", "plain", "plain", biased)) == 0  # a control judges nothing
    assert "**does not hold 1.00**" in capsys.readouterr().out


def test_the_speed_split_shows_no_difference_for_a_chance_imbalance_in_an_a_a_run(tmp_path: Path) -> None:
    # A/A: in each pair one slot is 10 % faster by chance; split by A's requests/s alone, the fast-A pairs would
    # show b/a 0.91 and the others 1.10; split by the pair's speed, both halves show the same mix
    pairs = []
    for i in range(8):
        speed = 1000.0 * (1 + 0.1 * (i % 4))
        a, b = (speed * 1.1, speed) if i % 2 else (speed, speed * 1.1)
        pairs.append(((a, 1e6 / a), (b, 1e6 / b)))
    run = _run(tmp_path, "plain", "plain", pairs)
    pd = report.Paired(report._kv((run / "meta.txt").read_text()), report.load_pairs(run))
    fast, slow = pd.by_speed("rps")
    assert fast == pytest.approx(slow, rel=0.01)


def test_a_run_that_ended_before_its_planned_pairs_is_flagged(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    run = _run(tmp_path, "plain", "plain", _drifting(1.0, 1.0, n=4))
    (run / "meta.txt").write_text((run / "meta.txt").read_text().replace("pairs=4", "pairs=10"))
    assert _main(run) == 1
    assert "only 4 of 10 pairs ran" in capsys.readouterr().out


def test_no_data_exits_two(tmp_path: Path) -> None:
    assert _main(tmp_path) == 2


def test_the_ratio_split_by_the_machines_speed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # fast pairs (a at 3,000/s): b costs 1.5x; slow pairs (a at 2,000/s): 1.1x
    pairs = [((3000.0, 300.0), (2000.0, 450.0))] * 3 + [((2000.0, 500.0), (1800.0, 550.0))] * 3
    run = _run(tmp_path, "plain", "tracing", pairs)
    pd = report.Paired(report._kv((run / "meta.txt").read_text()), report.load_pairs(run))
    fast, slow = pd.by_speed("cpu_us")
    assert fast == pytest.approx(1.5, abs=0.01)
    assert slow == pytest.approx(1.1, abs=0.01)
    assert _main(run) == 0  # judged on all six pairs: their median is 1.30x, at the line, not the fast pairs' 1.5x
    out = capsys.readouterr().out
    assert "in the faster half of the pairs (by both proxies' requests/s): 1.50" in out
    assert "| issue 17: CPU µs/request <= 1.3x tracing off | 1.30" in out
