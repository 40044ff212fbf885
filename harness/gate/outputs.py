"""What `patternbench gate` writes into the run folder, and the table it prints.

    gate.json                    every result with its numbers (`GateReport`, read back by
                                 `read_report`)
    gate.md                      Markdown for a CI job summary ($GITHUB_STEP_SUMMARY)
    gate.junit.xml               one test case per result, for CI test UIs
    gate-benchmark-smaller.json  github-action-benchmark `customSmallerIsBetter` entries
    gate-benchmark-bigger.json   github-action-benchmark `customBiggerIsBetter` entries
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.gate.check import GateResult
from harness.records.atomic import write_json, write_text
from harness.records.typed_json import decode, encode

GATE_JSON = "gate.json"
GATE_MD = "gate.md"
GATE_JUNIT = "gate.junit.xml"
BENCH_SMALLER = "gate-benchmark-smaller.json"
BENCH_BIGGER = "gate-benchmark-bigger.json"
_MARK = {"pass": "✅ pass", "fail": "❌ FAIL", "inconclusive": "⚠️ inconclusive",
         "cannot_judge": "⚠️ cannot judge", "skipped": "➖ skipped"}


@dataclass(frozen=True)
class GateReport:
    """The gate's decision on one run: `exit_code` 0 pass, 1 regression, 2 cannot judge."""

    run: str
    baseline: str | None
    machine_kind: str
    exit_code: int
    results: tuple[GateResult, ...]


def write_outputs(run: Path, report: GateReport) -> list[Path]:
    """Every output file of `report` into `run`; returns their paths."""
    return [
        write_json(run / GATE_JSON, encode(report)),
        write_text(run / GATE_MD, [markdown(report)]),
        write_text(run / GATE_JUNIT, [junit_xml(report)]),
        write_json(run / BENCH_SMALLER, benchmark_entries(report, bigger=False)),
        write_json(run / BENCH_BIGGER, benchmark_entries(report, bigger=True)),
    ]


def read_report(path: Path) -> GateReport:
    """gate.json read back."""
    report: GateReport = decode(GateReport, json.loads(path.read_text(encoding="utf-8")))
    return report


def rows(report: GateReport) -> list[tuple[str, str, str, str, str, str]]:
    """(gate, value, CI, threshold, verdict, note) per result, as printed and in gate.md."""
    out: list[tuple[str, str, str, str, str, str]] = []
    for r in report.results:
        value, ci = _num(r.value), _interval(r.ci)
        note = r.reason or ""
        if r.kind == "relative" and r.change_pct is not None:
            value = f"{_num(r.value)} ({r.change_pct:+.1f}% vs {_num(r.baseline)})"
            ci = _interval(r.change_ci_pct, "%")
        if r.fails_beyond_pct is not None and not note:
            note = f"fails beyond {r.fails_beyond_pct:+.0f}% at this noise"
        out.append((r.subject, value, ci, r.expr, r.verdict, note))
    return out


def table(report: GateReport) -> str:
    """The printed table (plain text, aligned columns)."""
    head = ("gate", "value", "CI 95%", "threshold", "verdict", "")
    body = rows(report)
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(5)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) +
             (f"  {row[5]}" if row[5] else "") for row in [head, *body]]
    return "\n".join(line.rstrip() for line in lines)


def markdown(report: GateReport) -> str:
    """gate.md: a heading with the outcome, then one table row per result."""
    outcome = {0: "passed", 1: "regression", 2: "cannot judge"}[report.exit_code]
    lines = [f"## patternbench gate: {outcome}", "",
             f"Run `{report.run}`, baseline `{report.baseline or 'none'}`, machine kind "
             f"`{report.machine_kind}`.", "",
             "| gate | value | CI 95% | threshold | verdict | note |",
             "|---|---|---|---|---|---|"]
    for subject, value, ci, expr, verdict, note in rows(report):
        cells = [f"`{subject}`", value, ci, f"`{expr}`", _MARK[verdict], note]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def junit_xml(report: GateReport) -> str:
    """One `testcase` per result: a fail is a `failure`, cannot_judge / inconclusive an
    `error`, skipped a `skipped`."""
    counts = {v: sum(r.verdict == v for r in report.results)
              for v in ("fail", "inconclusive", "cannot_judge", "skipped")}
    suite = ET.Element("testsuite", name="patternbench.gate", tests=str(len(report.results)),
                       failures=str(counts["fail"]),
                       errors=str(counts["inconclusive"] + counts["cannot_judge"]),
                       skipped=str(counts["skipped"]))
    for r, row in zip(report.results, rows(report), strict=True):
        case = ET.SubElement(suite, "testcase", classname=f"gate.{r.kind}", name=r.subject)
        text = f"{r.subject}: {row[1]} CI {row[2]}, bound {r.expr}. {r.reason or ''}".strip()
        tag = {"fail": "failure", "inconclusive": "error", "cannot_judge": "error",
               "skipped": "skipped"}.get(r.verdict)
        if tag:
            ET.SubElement(case, tag, message=f"{r.verdict}: {text}")
    xml: str = ET.tostring(suite, encoding="unicode", xml_declaration=True)
    return xml + "\n"


def benchmark_entries(report: GateReport, bigger: bool) -> list[dict[str, Any]]:
    """github-action-benchmark custom entries ({name, unit, value, range, extra}) of every
    result with a value whose direction is `bigger` (more is better) or not."""
    out: list[dict[str, Any]] = []
    for r in report.results:
        if r.value is None or not math.isfinite(r.value) or r.higher_is_better != bigger:
            continue
        entry: dict[str, Any] = {"name": r.subject, "unit": _unit(r.subject), "value": r.value,
                                 "extra": f"gate {r.expr}: {r.verdict}"}
        if r.ci is not None:
            entry["range"] = f"± {(r.ci[1] - r.ci[0]) / 2:.4g}"
        out.append(entry)
    return out


def _unit(subject: str) -> str:
    if " / " in subject:
        return "ratio"
    field, part = subject.split(".")[-2:]
    if field in ("throughput", "goodput") and part.endswith("_s"):
        return "req/s" if part == "req_s" else "tok/s"
    return {"goodput": "share", "requests": "requests", "output_tokens": "tokens"}.get(field,
                                                                                      "ms")


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _interval(ci: tuple[float, float] | None, unit: str = "") -> str:
    if ci is None:
        return "—"
    if unit == "%":
        return f"[{ci[0]:+.1f}%, {ci[1]:+.1f}%]"
    return f"[{ci[0]:.4g}, {ci[1]:.4g}]"
