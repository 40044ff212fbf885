"""The published site as a reader sees it: report, compare page and index in headless Chromium.

Each page is opened from a copy whose only change is a check script (and a CSP that lets that
one inline script run; every fetch stays forbidden): the test fails on any console message
(a script error, a blocked fetch, a broken image) and on any <img> that did not decode.
Every string from a scenario, a target label or a server's reply is hostile HTML, and must
render as text.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from harness.cli.reports import main
from harness.gate.baseline import save_baseline
from harness.report.build import build_report
from harness.report.compare_page import compare_runs
from harness.run.manifest import read_manifest
from harness.verdict.anchors import chart_anchor
from tests.manifests import manifest, scenario, write_manifest
from tests.unit.test_compare import write_run
from tests.unit.test_report import HOSTILE, make_run
from tests.unit.test_request_charts import RUN_ID, write_point_samples

LABEL = '"><img src=x onerror=alert(2)>'  # a target label (no "/": it names a folder)
REPLY = "<script>alert(3)</script> upstream said no"  # a server's error text
CHROMIUM = shutil.which("chromium")
CHECK = ("<script>window.addEventListener('load',()=>{const imgs=[...document.images];"
         "const bad=imgs.filter(i=>!(i.complete&&i.naturalWidth>0));"
         "document.body.dataset.check=imgs.length+':'+bad.length;"
         "if(bad.length)console.error('image did not decode: '+bad.map(i=>i.alt).join('|'));"
         "});</script></body>")


def hostile_run(results: Path, run_id: str, created: str, scenario: str) -> Path:
    run_dir = make_run(results, run_id, created, description=HOSTILE, name=scenario)
    write_point_samples(run_dir)
    summary = (run_dir / "summary.json").read_text().replace("flask_threads", "@@")
    (run_dir / "summary.json").write_text(summary.replace("@@", json.dumps(LABEL)[1:-1]))
    data = json.loads((run_dir / "summary.json").read_text())
    data["targets"]["fastapi_blocking"]["error"] = REPLY
    (run_dir / "summary.json").write_text(json.dumps(data))
    written = read_manifest(run_dir)
    folder = str(Path.home() / ".cache" / "patternbench" / "models" / "t")
    write_manifest(run_dir, replace(written, model=replace(written.model, folder=folder),
                                    scenario_file=str(Path.cwd() / "scenarios" / "default.toml")))
    return run_dir


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("site")
    results = root / "results"
    hostile_run(results, "20261126-090000-default-aaaaaaa", "2026-11-26T09:00:00+00:00",
                "default")
    hostile_run(results, "20261127-173500-default-bbbbbbb", "2026-11-27T17:35:00+00:00",
                "default")
    hostile_run(results, "20261128-120000-other-ccccccc", "2026-11-28T12:00:00+00:00", HOSTILE)
    assert main(["publish", str(root / "site"), "--results", str(results)]) == 0
    compare_runs([results / "20261127-173500-default-bbbbbbb",
                  results / "20261128-120000-other-ccccccc"], root / "site")
    return root / "site"


def pages(site: Path) -> dict[str, Path]:
    return {"index": site / "index.html",
            "report": site / "20261127-173500-default-bbbbbbb" / "index.html",
            "compare": site / ("compare-20261126-090000-default-aaaaaaa-vs-"
                               "20261127-173500-default-bbbbbbb") / "index.html",
            "compare_hostile": site / ("compare-20261127-173500-default-bbbbbbb-vs-"
                                       "20261128-120000-other-ccccccc") / "index.html"}


def test_the_site_has_every_page_with_relative_links_and_no_machine_path(site: Path) -> None:
    for name, page in pages(site).items():
        html = page.read_text(encoding="utf-8")
        hrefs = re.findall(r"(?:href|src)='([^']*)'", html)
        assert hrefs and all(not re.match(r"(/|[a-z]+://|file:)", h) for h in hrefs), name
        for href in (h for h in hrefs if not h.startswith(("#", "data:"))):
            assert (page.parent / href.split("#")[0]).resolve().is_file(), (name, href)
    everything = "".join(p.read_text(errors="replace") for p in site.rglob("*") if p.is_file())
    assert str(Path.cwd()) not in everything and str(Path.home()) + "/" not in everything


def test_the_index_groups_by_scenario_with_headlines_trend_and_compare_links(
        site: Path) -> None:
    html = pages(site)["index"].read_text(encoding="utf-8")
    sections = re.findall(r"<section id='scenario-\d+'><h2>([^<]*)</h2>", html)
    assert sections == ["&lt;script&gt;alert(1)&lt;/script&gt;", "default"]  # newest first
    assert "7,223<br><span class='muted'>fastapi_batching · c32</span>" in html
    assert html.count("href='compare-") == 1 and "data:image/png" in html  # default's trend
    assert "id='chart-trend-default'" in html


def test_hostile_strings_render_as_text(site: Path) -> None:
    for name, page in pages(site).items():
        html = page.read_text(encoding="utf-8")
        assert "<script" not in html and "<img src=x" not in html, name
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, name
    report = pages(site)["report"].read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(3)&lt;/script&gt; upstream said no" in report
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in report


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed "
                    "(.ci/run installs it); the pages cannot be opened in a browser here")
@pytest.mark.parametrize("name", ["report", "compare", "compare_hostile", "index"])
def test_each_page_renders_in_chromium_without_errors(site: Path, tmp_path: Path,
                                                      name: str) -> None:
    page = pages(site)[name]
    copy = tmp_path / page.parent.name / "index.html"
    copy.parent.mkdir(parents=True)
    html = page.read_text(encoding="utf-8")
    html = html.replace("style-src 'unsafe-inline'",
                        "style-src 'unsafe-inline'; script-src 'unsafe-inline'")
    copy.write_text(html.replace("</body>", CHECK), encoding="utf-8")
    done = subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
         "--v=0", "--virtual-time-budget=10000", "--dump-dom", copy.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == [], console
    check = re.search(r'data-check="(\d+):(\d+)"', done.stdout)
    assert check, "the check script did not run"
    images, broken = int(check.group(1)), int(check.group(2))
    assert broken == 0 and images == html.count("<img "), (images, broken)
    assert images >= (2 if name.startswith("compare") else 1)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("charts")
    run_dir = make_run(root / "results", RUN_ID, "2026-11-27T17:35:00+00:00")
    write_point_samples(run_dir)
    return build_report(run_dir, root / "reports").read_text(encoding="utf-8")


def figure(page: str, kind: str, detail: str = "") -> str:
    match = re.search(f"<figure id='{chart_anchor(kind, detail)}'>(.*?)</figure>", page, re.S)
    assert match, f"no {kind} figure"
    return match.group(1)


def test_every_new_chart_has_an_image_a_caption_alt_numbers_and_data(page: str) -> None:
    pareto = figure(page, "pareto")
    assert "data:image/png;base64," in pareto and "up and to the right" in pareto
    assert re.search(r"alt='[^']*fastapi_batching at c32, 7,?223 output tok/s", pareto)
    assert "<details><summary>Data of this chart</summary><table" in pareto
    ttft = figure(page, "ttft_cdf")
    assert "TTFT CDF at c=32" in ttft and "fastapi_batching p50 20 ms" in ttft
    assert "flask_threads p50 9320 ms" in ttft  # the 16th of 32 served one by one
    assert "E2E latency CDF at c=32" in figure(page, "e2e_cdf")
    assert "max" in figure(page, "latency_over_time")
    serial = figure(page, "gantt", "flask_threads")
    assert "33 of 33 requests" in serial and "flask_threads-c32-x" in serial
    assert "data:image/png" in figure(page, "gantt", "fastapi_batching")


def test_compare_command_writes_html_and_markdown(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path / "r", "20261127-173500-default-aaaaaaa", 100.0, 300.0)
    b = write_run(tmp_path / "r", "20261128-173500-default-bbbbbbb", 160.0, 200.0,
                  manifest(scenario(name=HOSTILE)))
    # the run-to-run noise two single runs are judged by: a baseline of three unchanged runs
    unchanged = [write_run(tmp_path / "base", f"20261126-17350{i}-default-aaaaaaa", ttft, tok_s)
                 for i, (ttft, tok_s) in enumerate([(95.0, 290.0), (100.0, 300.0),
                                                    (105.0, 310.0)])]
    baselines = tmp_path / "baselines"
    save_baseline(unchanged, baselines)
    assert main(["compare", str(a), str(b), "--reports", str(tmp_path / "reports"),
                 "--baselines", str(baselines)]) == 0
    out = capsys.readouterr().out.split()
    html_path, md_path = Path(out[1]), Path(out[3])
    assert html_path.parent.name == "compare-" + a.name + "-vs-" + b.name
    html, md = html_path.read_text(), md_path.read_text()
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert "Different scenarios" in html and html.count("data:image/png;base64,") == 2
    assert "class='num delta regressed'" in html and "<strong>regressed</strong>" in html
    assert "| fastapi_batching |" in md and "regressed" in md and "-33.3%" in md
