"""The report stage: a synthetic run folder in, a self-contained HTML page and an index out."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from harness.records.typed_json import encode
from harness.report.build import build_index, build_report
from harness.run.manifest import ModelInfo, read_manifest
from harness.summary.record import SCHEMA_VERSION
from harness.telemetry.summary import summarize_telemetry
from harness.verdict.anchors import chart_anchor, point_anchor, target_anchor
from tests.manifests import manifest, scenario, write_manifest

HOSTILE = "<script>alert(1)</script>"
FAILED_ERROR = "startup timed out after 60 s: /health never answered"


def dist(p50: float, p99: float, count: int = 40) -> dict[str, float | int]:
    return {"count": count, "mean": p50 * 1.1, "p50": p50, "p90": p99 * 0.8,
            "p95": p99 * 0.9, "p99": p99, "max": p99 * 1.2}


def point(target: str, concurrency: int, scale: float, **overrides: Any) -> dict[str, Any]:
    p: dict[str, Any] = {
        "target": target, "target_name": target, "driver": "builtin", "point": f"c{concurrency}",
        "load": {"kind": "closed", "concurrency": concurrency}, "stream": True,
        "requests": {"ok": 40, "http_error": 0, "refused": 0, "timeout": 0, "truncated": 0,
                     "conn_error": 0, "total": 40},
        "http_errors": {},
        "ttft_ms": dist(20.0 * scale, 60.0 * scale), "ttft_sched_ms": dist(21 * scale, 61 * scale),
        "ttfb_ms": dist(18.0 * scale, 55.0 * scale), "tpot_ms": dist(7.0, 9.5),
        "itl_ms": dist(6.5, 14.0, 2400), "e2e_ms": dist(480.0 * scale, 900.0 * scale),
        "e2e_sched_ms": dist(490.0 * scale, 950.0 * scale), "dispatch_lag_ms": dist(0.2, 0.8),
        "output_tokens": dist(64, 64),
        "throughput": {"window_s": 8.1, "req_s": 4.9 * concurrency / scale,
                       "output_tok_s": 316.0 * concurrency / scale, "input_tok_s": 632.0},
        "goodput": {"slo": {"ttft_ms": 500}, "good_requests": 30, "req_s": 3.7, "fraction": 0.75},
        "achieved_concurrency": concurrency * 0.98,
        "token_counts_from": ["usage"],
        "flags": [], "max_dispatch_lag_ms": 50.0, "driver_stats": None, "probe": None,
        "dropped": None, "driver_loop_lag_ms": None, "repeat": 0,
        "telemetry": None, "proxy": None,
    }
    p.update(overrides)
    return p


def telemetry() -> dict[str, Any]:
    """A point's telemetry as the telemetry stage writes it: two host samples in the window."""
    records = [{"kind": "host", "t": t, "target_cpu_pct": cpu, "target_rss_mb": 812.0,
                "target_procs": 1, "driver_cpu_pct": 20.0, "driver_rss_mb": 60.0}
               for t, cpu in ((1.0, 181.25), (2.0, 181.25))]
    records += [{"kind": "metrics", "t": t, "source": "patternbench", "batch_size": 8.0,
                 "prefix_cache_queries": q, "prefix_cache_hits": h, "error": None}
                for t, q, h in ((1.0, 512.0, 0.0), (2.0, 4608.0, 3072.0))]
    out: dict[str, Any] = encode(summarize_telemetry(records, start=0.5, end=2.5))
    return out


def make_run(results: Path, run_id: str, created: str, description: str = "A test run",
             name: str = "default") -> Path:
    """Two targets that ran three closed-loop points each, and one that failed to start."""
    run_dir = results / run_id
    (run_dir / "telemetry").mkdir(parents=True)
    points = [point("flask_threads", c, s) for c, s in ((1, 1.0), (8, 2.0))]
    points.append(point(
        "flask_threads", 32, 6.0, ttft_ms=None, ttft_sched_ms=None, flags=["driver_bound"],
        requests={"ok": 33, "http_error": 2, "refused": 5, "timeout": 0, "truncated": 0,
                  "conn_error": 0, "total": 40},
        http_errors={"503": 2}, telemetry=telemetry(),
        probe={"latency_ms": dist(3.0, 41.5), "sent": 40, "answered": 40, "censored": 0,
               "missed_ticks": 0, "timeout_ms": 10000.0}))
    points += [point("fastapi_batching", c, s) for c, s in ((1, 0.9), (8, 1.1), (32, 1.4))]
    points[0]["ttft_ms"].update(p50=123.456, p99=150.0)
    points[0]["throughput"]["output_tok_s"] = 316.0
    points[3]["e2e_ms"]["p99"] = 1234.56
    summary = {
        "schema_version": SCHEMA_VERSION, "run": run_id, "scenario": "default",
        "interrupted": False,
        "targets": {
            "flask_threads": {"name": "flask_threads", "options": {"threads": 8},
                              "status": "ok", "startup_s": 3.2, "error": None},
            "fastapi_batching": {"name": "fastapi_batching", "options": {"max_batch": 16},
                                 "status": "ok", "startup_s": 4.0, "error": None},
            "fastapi_blocking": {"name": "fastapi_blocking", "options": {}, "status": "failed",
                                 "startup_s": None, "error": FAILED_ERROR},
        },
        "points": points,
    }
    sc = scenario(name=name, description=description,
                  load={"kind": "closed", "concurrency": [1, 8, 32], "duration_s": 5},
                  targets=[{"name": "flask_threads", "options": {"threads": 8}},
                           {"name": "fastapi_batching", "options": {"max_batch": 16}},
                           {"name": "fastapi_blocking"}])
    model = ModelInfo(spec="tiny", folder="/m", hash="feedbeef" * 8)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    write_manifest(run_dir, manifest(sc, run=run_id, created=created, model=model))
    (run_dir / "telemetry" / "flask_threads.jsonl").write_text(
        '{"t": 0.5, "cpu_pct": 50.0, "rss_mb": 300}\nnot json\n{"t": 1.0, "cpu_pct": 150.0}\n')
    return run_dir


def point_row(page: str, label: str) -> str:
    """The HTML of the main-table row whose load label is `label`."""
    match = re.search(r"<tr[^>]*><th scope='row'>" + re.escape(label) + r"</th>(.*?)</tr>", page)
    assert match, f"no row for {label}"
    return match.group(1)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One report, built once and only read by the tests that take it (charts cost ~1 s)."""
    root = tmp_path_factory.mktemp("report")
    run_dir = make_run(root / "results", "20261127-173500-default-abc1234",
                       "2026-11-27T17:35:00+00:00", description=HOSTILE)
    page = build_report(run_dir, root / "reports")
    return page, page.read_text(encoding="utf-8")


@pytest.mark.slow  # renders whole pages with charts (seconds): make test, not test-fast
def test_report_is_written_beside_meta_and_index(report: tuple[Path, str]) -> None:
    page, _ = report
    reports = page.parents[1]
    assert page == reports / "20261127-173500-default-abc1234" / "index.html"
    meta = json.loads((page.parent / "meta.json").read_text())
    assert meta["targets"] == ["flask_threads", "fastapi_batching", "fastapi_blocking"]
    assert meta["failed_targets"] == ["fastapi_blocking"]
    assert (reports / "index.html").is_file()
    assert sorted(p.name for p in page.parent.iterdir()) == ["index.html", "meta.json"]


@pytest.mark.slow  # renders whole pages with charts (seconds): make test, not test-fast
def test_report_is_self_contained_with_embedded_charts(report: tuple[Path, str]) -> None:
    _, html = report
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "@import" not in html and "url(" not in html
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(images) == 5  # tokens/s, TTFT p99, E2E, errors, Pareto (no samples stored)
    assert all(base64.b64decode(i).startswith(b"\x89PNG\r\n\x1a\n") for i in images)


@pytest.mark.slow  # renders whole pages with charts (seconds): make test, not test-fast
def test_report_shows_the_numbers_fed_in(report: tuple[Path, str]) -> None:
    _, html = report
    row = point_row(html, "c=1")  # flask_threads c1 comes first
    assert "<td class='num'>123.5</td>" in row  # TTFT p50, 1 decimal
    assert "<td class='num'>316</td>" in row  # output tok/s, integer
    assert "<td class='num'>4.90</td>" in row  # req/s
    assert "3.70 · 75%" in row  # goodput
    assert "<td class='num'>0.8</td>" in row  # dispatch lag p99
    assert "1,234.6" in html  # fastapi_batching c1 E2E p99
    assert "Xeon" in html and "feedbeef" in html and "abc1234def" in html
    assert "threads=8" in html


@pytest.mark.slow  # renders whole pages with charts (seconds): make test, not test-fast
def test_report_escapes_hostile_text(report: tuple[Path, str]) -> None:
    _, html = report
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()


@pytest.mark.slow  # renders whole pages with charts (seconds): make test, not test-fast
def test_every_data_string_is_escaped(tmp_path: Path) -> None:
    evil = "<b id=pwn>'\"&"
    run_dir = make_run(tmp_path / "results", "20261127-173500-evil-abc1234", "bad date")
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["targets"][evil] = {"name": evil, "options": {evil: evil}, "status": "failed",
                                "error": evil}
    summary["points"].append(point(evil, 2, 1.0, flags=[evil], http_errors={evil: 1},
                                   load={"kind": evil, "concurrency": 2},
                                   driver_stats={evil: {evil: 1}}))
    summary["points"][-1]["requests"]["http_error"] = 1
    (run_dir / "summary.json").write_text(json.dumps(summary))
    written = read_manifest(run_dir)
    write_manifest(run_dir, replace(written, device=evil, versions={evil: evil},
                                    model=ModelInfo(spec=evil, folder=evil, hash=evil)))
    (run_dir / "telemetry" / f"{evil.replace('/', '')}.jsonl").write_text(json.dumps({evil: 1}))
    reports = tmp_path / "reports"
    html = build_report(run_dir, reports).read_text(encoding="utf-8")
    index = (reports / "index.html").read_text(encoding="utf-8")
    for page in (html, index):
        assert "<b id=pwn>" not in page
        assert "&lt;b id=pwn&gt;" in page
    assert "bad date" in html  # an unparsable date is shown as given


@pytest.mark.slow  # renders whole pages with charts (seconds): make test, not test-fast
def test_report_shows_failed_target_flags_and_dashes(report: tuple[Path, str]) -> None:
    _, html = report
    assert FAILED_ERROR in html
    assert "fastapi_blocking" in html and "failed" in html
    flagged = point_row(html, "c=32")
    assert "⚠ driver_bound" in flagged
    ttft_p50, ttft_p99 = re.findall(r"<td class='num'>([^<]*)</td>", flagged)[2:4]
    assert (ttft_p50, ttft_p99) == ("—", "—")  # null TTFT is a dash, never 0
    assert "refused 5" in flagged and "503×2" in flagged
    assert "TTFT shows — for c=32 (closed)" in html


@pytest.mark.slow  # renders whole pages with charts (seconds): make test, not test-fast
def test_report_renders_every_field_and_telemetry(report: tuple[Path, str]) -> None:
    _, html = report
    assert "<code>probe.latency_ms</code>" in html
    assert "<code>telemetry.target.cpu_pct</code>" in html and "181.25" in html
    assert "<code>telemetry.target.rss_peak_mb</code>" in html and "812" in html
    assert "(prefix cache hits 75%)" in html  # 3072 of the window's 4096 prompt tokens
    assert "<code>cpu_pct</code>" in html  # telemetry/flask_threads.jsonl summarized
    assert "1 line(s) were not JSON objects" in html


def bare_run(tmp_path: Path, summary: Any) -> str:
    run_dir = tmp_path / "results" / "20260101-000000-bare-0000000"
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    (run_dir / "manifest.json").write_text(json.dumps({"scenario": "not a dict"}))
    return build_report(run_dir, tmp_path / "reports").read_text(encoding="utf-8")


def test_a_point_with_empty_metrics_renders_dashes(tmp_path: Path) -> None:
    empty = point("t1", 1, 1.0, point="r2.5", load={"kind": "poisson", "rate_rps": 2.5},
                  requests={"ok": 0, "http_error": 0, "refused": 0, "timeout": 3,
                            "truncated": 0, "conn_error": 0, "total": 3},
                  **{m: None for m in ("ttft_ms", "ttft_sched_ms", "ttfb_ms", "tpot_ms",
                                       "itl_ms", "e2e_ms", "e2e_sched_ms", "output_tokens")},
                  throughput={"window_s": None, "req_s": None, "output_tok_s": None,
                              "input_tok_s": None}, goodput=None)
    html = bare_run(tmp_path, {"schema_version": SCHEMA_VERSION, "run": "r", "scenario": "s",
                               "interrupted": True, "targets": {}, "points": [empty]})
    assert "2.5 req/s (poisson)" in html
    assert html.count("<figure ") == 5  # placeholders where there is nothing to plot
    assert "—" in point_row(html, "2.5 req/s") and "timeout 3" in point_row(html, "2.5 req/s")


def test_a_summary_of_an_older_version_is_a_notice_not_a_crash(tmp_path: Path) -> None:
    html = bare_run(tmp_path, {"schema_version": 1, "points": [{"target": "t1"}]})
    assert "written by an older version of patternbench (schema 1" in html


def test_a_summary_that_does_not_fit_names_the_field(tmp_path: Path) -> None:
    bad = point("t1", 1, 1.0)
    bad["requests"]["ok"] = "many"
    html = bare_run(tmp_path, {"schema_version": SCHEMA_VERSION, "run": "r", "scenario": "s",
                               "interrupted": False, "targets": {}, "points": [bad]})
    assert "points[0].requests.ok: expected int, got &#x27;many&#x27;" in html


def test_points_without_first_token_data(tmp_path: Path) -> None:
    """A driver that records only the first byte (k6): TTFT is a dash and its chart says so."""
    run_dir = tmp_path / "results" / "20260102-000000-k6-0000000"
    run_dir.mkdir(parents=True)
    points = [point("flask_threads", c, 1.0, driver="k6", ttft_ms=None, ttft_sched_ms=None,
                    tpot_ms=None, itl_ms=None) for c in (1, 4)]
    (run_dir / "summary.json").write_text(json.dumps({
        "schema_version": SCHEMA_VERSION, "run": run_dir.name, "scenario": "k6",
        "interrupted": False, "targets": {}, "points": points}))
    html = build_report(run_dir, tmp_path / "reports").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 2  # tokens/s and E2E
    assert "No data for this chart" in html  # TTFT
    assert "No request failed (80 requests" in html  # errors
    assert "TTFT shows — for c=1 (closed) (TTFB p50 18.0 ms), c=4 (closed)" in html
    cells = re.findall(r"<td class='num'>([^<]*)</td>", point_row(html, "c=4"))
    assert cells[1] == "—"  # dropped: the builtin driver cannot tell
    assert cells[2:8] == ["—"] * 6  # TTFT, TPOT, ITL p50/p99


def test_missing_summary_is_a_notice_and_missing_run_raises(tmp_path: Path) -> None:
    run_dir = tmp_path / "results" / "20260101-000000-empty-0000000"
    run_dir.mkdir(parents=True)
    html = build_report(run_dir, tmp_path / "reports").read_text(encoding="utf-8")
    assert "summary.json is missing" in html and "manifest.json is missing" in html
    with pytest.raises(FileNotFoundError):
        build_report(tmp_path / "results" / "nope", tmp_path / "reports")


@pytest.mark.slow  # renders whole pages with charts (seconds): make test, not test-fast
def test_index_lists_runs_newest_first(tmp_path: Path) -> None:
    results, reports = tmp_path / "results", tmp_path / "reports"
    newer = make_run(results, "20261127-173500-default-bbbbbbb", "2026-11-27T17:35:00+00:00")
    older = make_run(results, "20261126-090000-default-aaaaaaa", "2026-11-26T09:00:00+00:00")
    build_report(newer, reports, index=False)
    build_report(older, reports, index=False)  # built last, but older: still listed second
    for root in (results, None):
        html = build_index(reports, root).read_text(encoding="utf-8")
        ids = re.findall(r"<th scope='row'><a href='([^']+)/index.html'>", html)
        assert ids == [newer.name, older.name]
        assert "2026-11-27 17:35:00 UTC" in html and "tiny" in html and "cpu" in html
        assert "fastapi_blocking ✗" in html


@pytest.mark.slow  # imports the report stack in a fresh interpreter (~1 s): make test
def test_import_has_no_side_effects() -> None:
    code = "import sys, harness.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"


def run_of(tmp_path: Path, points: list[dict[str, Any]]) -> str:
    return bare_run(tmp_path, {"schema_version": SCHEMA_VERSION, "run": "r", "scenario": "s",
                               "interrupted": False, "targets": {}, "points": points})


@pytest.mark.slow  # renders whole pages with charts (seconds): make test, not test-fast
def test_percentiles_from_too_few_values_are_greyed_with_the_reason(tmp_path: Path) -> None:
    few = point("t1", 16, 1.0)
    few["ttft_ms"] = {**dist(20.0, 60.0, count=16), "ci95": {"p50": [18.0, 23.0], "p99": None},
                      "too_few": ["p90", "p95", "p99"]}
    html = run_of(tmp_path, [few])
    row = point_row(html, "c=16")
    assert "<td class='num'>20.0</td>" in row  # p50 has enough values: plain
    assert ("<td class='num too-few' title='only 16 values: too few for a trustworthy p99 "
            "(below its floor); it is little more than the largest value'>60.0</td>") in row
    assert "td.too-few" in html  # styled grey, never hidden
    assert "18.0–23.0 · —" in html  # the CI column of the details table


@pytest.mark.slow  # renders whole pages with charts (seconds): make test, not test-fast
def test_dropped_arrivals_are_failures_and_a_column(tmp_path: Path) -> None:
    html = run_of(tmp_path, [point("t1", 4, 1.0, driver="k6", dropped=7)])
    assert "No request failed" not in html
    row = point_row(html, "c=4")
    assert "dropped 7" in row and "<td class='num'>7</td>" in row
    assert "Non-ok requests by status" in html  # the errors chart is drawn


def test_an_all_failed_point_shows_zero_throughput_and_stays_in_the_charts(
        tmp_path: Path) -> None:
    hung = point("t1", 16, 1.0, requests={"ok": 0, "http_error": 0, "refused": 0, "timeout": 16,
                                         "truncated": 0, "conn_error": 0, "total": 16},
                 **{m: None for m in ("ttft_ms", "ttft_sched_ms", "ttfb_ms", "tpot_ms",
                                      "itl_ms", "e2e_ms", "e2e_sched_ms", "output_tokens")},
                 throughput={"window_s": 8.0, "req_s": None, "output_tok_s": None,
                             "input_tok_s": None}, goodput=None)
    html = run_of(tmp_path, [hung])
    cells = re.findall(r"<td class='num'>([^<]*)</td>", point_row(html, "c=16"))
    assert cells[0] == "0" and "0.00" in cells and "timeout 16" in point_row(html, "c=16")
    assert "No request failed" not in html
    tokens_chart = html.split("Output tokens/s vs load")[0].rsplit("<figure ", 1)[1]
    assert "data:image/png" in tokens_chart  # plotted at 0, not left out


@pytest.mark.slow  # renders whole pages with charts (seconds): make test, not test-fast
def test_probe_censored_and_missed_counts_are_shown(tmp_path: Path) -> None:
    stalled = point("t1", 16, 1.0, probe={
        "latency_ms": dist(8181.0, 10000.0, count=12), "sent": 12, "answered": 9,
        "censored": 3, "missed_ticks": 41, "timeout_ms": 10000.0})
    row = point_row(run_of(tmp_path, [stalled]), "c=16")
    assert "10,000.0<br><span class='err'>3 censored at 10,000.0 · 41 missed</span>" in row


@pytest.mark.slow  # renders whole pages with charts (seconds): make test, not test-fast
def test_glossary_names_aiperf_ttfb_and_pooled_itl(tmp_path: Path) -> None:
    html = run_of(tmp_path, [point("t1", 1, 1.0)])
    assert "k6&#x27;s name" not in html and "its HTTP trace metric" in html
    assert "pooled across all requests" in html and "not a per-request average" in html


@pytest.mark.slow  # renders whole pages with charts (seconds): make test, not test-fast
def test_repeats_are_shown_as_mean_and_t_interval(tmp_path: Path) -> None:
    reps = [point("t1", 4, 1.0, repeat=r) for r in range(3)]
    for r, p50 in enumerate((100.0, 110.0, 120.0)):
        reps[r]["ttft_ms"]["p50"] = p50
    html = run_of(tmp_path, reps)
    assert "Across repeats: mean ± 95% t-interval" in html
    assert "110.0 ± 24.8 (n=3)" in html  # t(0.975, 2) = 4.303 · 10 / √3
    assert "c=4 · repeat 2" in html
    assert "Across repeats" not in run_of(tmp_path / "once", [point("t1", 4, 1.0)])


def test_headline_charts_fall_back_from_a_p99_that_too_few_requests_cannot_carry() -> None:
    from harness.report.charts import supported_tail
    from harness.summary.record import Distribution, Load
    from tests.summaries import typed_point

    few = Distribution.of(float(v) for v in range(20))  # 20 values: p90 and p99 too few
    many = Distribution.of(float(v) for v in range(700))  # enough for a p99
    small = [typed_point("t", "c1", Load(kind="closed", concurrency=1), ttft_ms=few)]
    large = [typed_point("t", "c1", Load(kind="closed", concurrency=1), ttft_ms=many)]
    assert supported_tail(small, "ttft_ms")[0] == "p50"
    assert "20–20 requests" in supported_tail(small, "ttft_ms")[1]
    assert supported_tail(large, "ttft_ms") == ("p99", "")
    assert supported_tail(small + large, "ttft_ms")[0] == "p50"  # every plotted point counts


def test_a_point_whose_requests_all_outlast_the_window_says_why_it_has_no_latency(
        tmp_path: Path) -> None:
    slow = point("flask_threads", 16, 1.0, **{m: None for m in (
        "ttft_ms", "ttft_sched_ms", "ttfb_ms", "tpot_ms", "itl_ms", "e2e_ms", "e2e_sched_ms",
        "output_tokens")})
    html = bare_run(tmp_path, {"schema_version": SCHEMA_VERSION, "run": "r", "scenario": "s",
                               "interrupted": False, "targets": {}, "points": [slow]})
    assert "Latencies show — for c=16 (closed) (40 ok)" in html
    assert "no first-token time was recorded" not in html


def test_sections_rows_and_charts_carry_the_anchor_ids(report: tuple[Path, str]) -> None:
    _, html = report
    targets = ["flask_threads", "fastapi_batching", "fastapi_blocking"]
    for target in targets:
        assert f"<section class='target' id='{target_anchor(targets, target)}'>" in html
    row = point_anchor(targets, "fastapi_batching", "c8")
    assert f"<tr id='{row}'><th scope='row'>c=8</th>" in html
    assert html.count(f"id='{row}'") == 1
    for kind in ("throughput", "ttft", "e2e", "errors"):
        assert f"<figure id='{chart_anchor(kind)}'>" in html
