"""bench/compare_report.py, the combined report of bench/compare.sh, on run folders written here in the shared
harness's raw format: per-round ratios to the same call's thin-aiohttp and to the reference profile, medians over
rounds, a target that failed in one round, the acceptance verdicts and the exit status."""

from __future__ import annotations

from pathlib import Path

import pytest

from .bench_scripts import load

report = load("compare_report")


def _target(raw: Path, target: str, rps: float | None, cpu_us: float = 100.0, p50: int = 500) -> None:
    """One target's raw files as the harness writes them (round 1: every compare call is one harness round);
    ``rps=None``: the target failed to start."""
    base = raw / f"r1_{target}"
    if rps is None:
        base.with_suffix(".meta").write_text("status=failed\nstartup_s=180\n")
        return
    seconds = 10
    requests = int(rps * seconds)
    ticks = cpu_us * requests * 100 / 1e6  # clk_tck 100
    base.with_suffix(".meta").write_text(f"status=ok\nkind=x\nstartup_s=1\nrss_kb=51200\ncpu_ticks={ticks:.0f}\nclk_tck=100\n")
    base.with_suffix(".thr").write_text(
        f"RESULT requests={requests} duration_s={seconds} rps={rps} p50_us=9000 p90_us=1 p99_us=1 max_us=1 mean_us=1 "
        "non2xx=0 connect_err=0 read_err=0 write_err=0 timeout_err=0 bytes=1\n")
    base.with_suffix(".lat").write_text(
        f"RESULT requests=100 duration_s=5 rps=20 p50_us={p50} p90_us=1 p99_us={p50 * 4} max_us=1 mean_us=1 "
        "non2xx=0 connect_err=0 read_err=0 write_err=0 timeout_err=0 bytes=1\n")
    for suffix in (".sseq", ".sconc"):
        base.with_suffix(suffix).write_text("STREAM requests=10 ok=10 err=0 rps=100 ttfb_p50_us=800\n")


def _call(run: Path, rnd: int, profile: str, new: tuple[float | None, float, int], thin_rps: float,
          load: tuple[float, float] = (1.5, 2.5)) -> None:
    d = run / f"r{rnd}-{profile}"
    (d / "raw").mkdir(parents=True)
    _target(d / "raw", "new", *new)
    _target(d / "raw", "thin-aiohttp", thin_rps, 150.0)
    (d / "load.txt").write_text(f"== before\n 08:00:00 up 1 day,  load average: {load[0]}, 1.0, 1.0\n"
                                f"== after\n 08:01:00 up 1 day,  load average: {load[1]}, 1.0, 1.0\n")
    with (run / "calls.txt").open("a") as f:
        f.write(f"round={rnd} profile={profile} dir=r{rnd}-{profile} exit=0 seconds=61\n")


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """plain (reference) and tables, three rounds; tables' modelgate failed to start in round 3."""
    (tmp_path / "profiles.txt").write_text("plain\ntables\n")
    _call(tmp_path, 1, "plain", (1000, 200, 500), 1250)
    _call(tmp_path, 1, "tables", (900, 260, 650), 1000)
    _call(tmp_path, 2, "tables", (600, 300, 700), 1000, load=(3.25, 4.0))
    _call(tmp_path, 2, "plain", (1000, 200, 400), 800)
    _call(tmp_path, 3, "plain", (1200, 240, 450), 1000)
    _call(tmp_path, 3, "tables", (None, 0, 0), 1000)
    return tmp_path


def test_ratios_and_medians_are_per_round_and_skip_the_failed_round(run: Path) -> None:
    cmp = report.Comparison(report.load_calls(run), ["plain", "tables"])
    assert cmp.rounds == [1, 2, 3]
    assert cmp.per_round("tables", "rps") == [900, 600, None]
    assert cmp.vs_reference("tables", "rps") == pytest.approx([0.9, 0.6, None])
    assert report.median(cmp.vs_reference("tables", "rps")) == pytest.approx(0.75)
    assert cmp.vs_reference("tables", "cpu_us") == pytest.approx([1.3, 1.5, None])
    assert cmp.vs_reference("tables", "p50_1c_us", "diff") == [150, 300, None]
    assert report.median(cmp.vs_reference("tables", "p50_1c_us", "diff")) == 225
    # against the same call's forwarder: plain r1 1000/1250, r2 1000/800, r3 1200/1000
    assert cmp.vs_forwarder("plain", "rps") == pytest.approx([0.8, 1.25, 1.2])
    assert report.median(cmp.vs_forwarder("plain", "rps")) == pytest.approx(1.2)
    assert report.median(cmp.per_round("plain", "cpu_us")) == pytest.approx(200)
    assert cmp.call(2, "tables").load == (3.25, 4.0)
    assert cmp.failures() == ["round 3 tables: new failed (see r3-tables/logs/)"]


def test_the_acceptance_line_is_judged_on_the_median_ratio(run: Path) -> None:
    cmp = report.Comparison(report.load_calls(run), ["plain", "tables"])
    [(profile, rule, m, ok)] = cmp.verdicts()
    assert (profile, rule.key, rule.limit) == ("tables", "rps", 0.8)
    assert m == pytest.approx(0.75)
    assert ok is False


def test_a_ratio_line_is_also_judged_with_each_call_over_its_own_forwarder(run: Path) -> None:
    cmp = report.Comparison(report.load_calls(run), ["plain", "tables"])
    # tables / its call's forwarder: 0.9, 0.6, -; plain: 0.8, 1.25, 1.2 -> 1.125, 0.48, - (median 0.8025)
    assert cmp.vs_reference_normalised("tables", "rps") == pytest.approx([1.125, 0.48, None])
    [(profile, rule, m, ok)] = cmp.normalised_verdicts()
    assert (profile, rule.key) == ("tables", "rps")
    assert m == pytest.approx(0.8025)
    assert ok is True  # while the same-round median (0.75) misses: the two can disagree, both are shown


def test_the_report_prints_the_figures_the_miss_and_the_failure(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main([str(run)]) == 1
    out = capsys.readouterr().out
    assert "| requests/s @64 conn | tables | 900 / 600 / n/a | 750 | 0.75x (0.90 / 0.60 / n/a) | 0.75x (0.90 / 0.60 / n/a) " in out
    assert ("| issue 17, stricter: requests/s >= 0.8x with usage tables too | tables | same round | 0.75x (0.90 / 0.60 / n/a) "
            "| **MISS** |") in out
    assert ("| issue 17, stricter: requests/s >= 0.8x with usage tables too | tables | each call over its own thin-aiohttp "
            "| 0.80x (1.12 / 0.48 / n/a) | pass |") in out
    assert "| r2 tables | ok | 1,000 | 150 | n/a | 3.25 -> 4.00 | 61 | 0 |" in out
    assert "| r3 tables | failed |" in out
    assert "round 3 tables: new failed" in out


def test_no_rule_between_unrelated_profiles_and_a_clean_run_exits_zero(tmp_path: Path) -> None:
    (tmp_path / "profiles.txt").write_text("tables\nplain\n")
    _call(tmp_path, 1, "tables", (900, 260, 650), 1000)
    _call(tmp_path, 1, "plain", (1000, 200, 500), 1000)
    cmp = report.Comparison(report.load_calls(tmp_path), ["tables", "plain"])
    assert cmp.verdicts() == []  # the rule is plain -> tables, not the other way round
    assert cmp.vs_reference("plain", "rps") == pytest.approx([1000 / 900])
    assert report.main([str(tmp_path)]) == 0


@pytest.fixture
def three(tmp_path: Path) -> Path:
    """plain (reference), payload-table and tables, two rounds: payload-table at 0.85x / 0.80x plain (the line
    holds, the second round exactly at it), tables at 0.75x / 0.70x (misses)."""
    (tmp_path / "profiles.txt").write_text("plain\npayload-table\ntables\n")
    _call(tmp_path, 1, "plain", (1000, 200, 500), 1000)
    _call(tmp_path, 1, "payload-table", (850, 220, 520), 1000)
    _call(tmp_path, 1, "tables", (750, 260, 650), 1000)
    _call(tmp_path, 2, "tables", (700, 280, 700), 1000)
    _call(tmp_path, 2, "payload-table", (800, 230, 540), 1000)
    _call(tmp_path, 2, "plain", (1000, 200, 500), 1000)
    return tmp_path


def test_the_payload_table_line_is_judged_beside_the_stricter_tables_line(three: Path) -> None:
    cmp = report.Comparison(report.load_calls(three), ["plain", "payload-table", "tables"])
    verdicts = {(p, rule.key): (rule.how, rule.limit, m, ok) for p, rule, m, ok in cmp.verdicts()}
    assert set(verdicts) == {("payload-table", "rps"), ("tables", "rps")}
    how, limit, m, ok = verdicts[("payload-table", "rps")]
    assert (how, limit) == ("ratio", 0.8)
    assert m == pytest.approx(0.825)  # median of 0.85 and 0.80
    assert ok is True
    how, limit, m, ok = verdicts[("tables", "rps")]
    assert m == pytest.approx(0.725)
    assert ok is False
    normalised = {p: ok for p, _, _, ok in cmp.normalised_verdicts()}  # every forwarder at 1000: the same figures
    assert normalised == {"payload-table": True, "tables": False}


def test_the_payload_table_line_passes_at_exactly_0_8_and_misses_below(tmp_path: Path) -> None:
    (tmp_path / "profiles.txt").write_text("plain\npayload-table\n")
    _call(tmp_path, 1, "plain", (1000, 200, 500), 1000)
    _call(tmp_path, 1, "payload-table", (800, 220, 520), 1000)
    [(_, _, m, ok)] = report.Comparison(report.load_calls(tmp_path), ["plain", "payload-table"]).verdicts()
    assert (m, ok) == (pytest.approx(0.8), True)
    assert report.main([str(tmp_path)]) == 0
    (tmp_path / "r1-payload-table").rename(tmp_path / "old")
    _call(tmp_path, 1, "payload-table", (790, 220, 520), 1000)
    [(_, _, m, ok)] = report.Comparison(report.load_calls(tmp_path), ["plain", "payload-table"]).verdicts()
    assert (m, ok) == (pytest.approx(0.79), False)
    assert report.main([str(tmp_path)]) == 1


def test_the_report_prints_both_issue_17_table_lines(three: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main([str(three)]) == 1  # tables misses
    out = capsys.readouterr().out
    assert ("| issue 17: requests/s >= 0.8x logging off (payload table) | payload-table | same round "
            "| 0.82x (0.85 / 0.80) | pass |") in out
    assert ("| issue 17, stricter: requests/s >= 0.8x with usage tables too | tables | same round "
            "| 0.72x (0.75 / 0.70) | **MISS** |") in out


def test_an_empty_folder_is_no_result(tmp_path: Path) -> None:
    assert report.main([str(tmp_path)]) == 2
