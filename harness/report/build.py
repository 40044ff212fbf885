"""A run's report page and the run index, built from stored results (see the package docstring).

    page = build_report(Path("results/20261127-173500-default-abc1234"), Path("reports"))
"""

from __future__ import annotations

from pathlib import Path

from harness.records.atomic import write_text
from harness.report.charts import headline_charts
from harness.report.index import REPORT_NAME, write_index, write_meta
from harness.report.page import report_html
from harness.report.pareto import pareto_chart
from harness.report.request_charts import at_load_charts
from harness.report.run_data import load_run
from harness.run.folder import RunDir


def build_report(run_dir: Path, reports_root: Path, index: bool = True) -> Path:
    """Write `reports_root/<run_dir.name>/index.html` (and its `meta.json`), then (unless
    `index` is False) rebuild `reports_root/index.html` with the runs beside `run_dir` as the
    results, so the run's compare page against the previous run of its scenario is written.
    Return the report's path.

    Raises FileNotFoundError when `run_dir` does not exist; anything less is shown on the page.
    """
    run_dir = Path(run_dir)
    reports_root = Path(reports_root)
    run = load_run(run_dir)
    report_dir = RunDir(run_dir).report_dir(reports_root)
    charts = [*headline_charts(run), pareto_chart(run)]
    page = write_text(report_dir / REPORT_NAME, report_html(run, charts, at_load_charts(run)))
    write_meta(report_dir, run)
    if index:
        build_index(reports_root, run_dir.parent)
    return page


def build_index(reports_root: Path, results_root: Path | None = None) -> Path:
    """Write `reports_root/index.html`: every run report under `reports_root`, newest first,
    with run id, scenario, date, targets, device, model and a link. Return its path.

    With `results_root`, each run's facts come from `results_root/<run>/` when that folder
    exists; otherwise from the `meta.json` written beside each report.
    """
    return write_index(Path(reports_root), None if results_root is None else Path(results_root))
