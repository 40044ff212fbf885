"""`patternbench capacity URL`: a capacity search against any OpenAI-compatible server, without a
scenario file, answered in one plain sentence.

    answer, run_dir, report = run_endpoint(EndpointOptions(url="http://127.0.0.1:8000",
                                                           model="served-name"))
    print(answer)
    # Capacity: 6 requests at once (first token < 500 ms and ≥ 20 tok/s each, for 90% of
    # requests); 8 fails: only 55% of requests met it.

The scenario is built in memory (`endpoint_scenario`): the `external` target (`targets.external`)
at the URL and a `kind = "capacity"` load (`harness.scenario.capacity`); it runs like
`patternbench run` (results folder, report) and the answer is read back from its summary.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from harness.run.folder import RunDir
from harness.scenario.capacity import DEFAULT_SHARE
from harness.scenario.decode import ScenarioError
from harness.scenario.load import parse_scenario
from harness.scenario.types import Scenario
from harness.summary.record import Capacity, RunSummary, read_summary
from harness.verdict.ranking import verdict
from harness.verdict.text import level_text, pct, share_text, slo_text

LABEL = "endpoint"


@dataclass(frozen=True)
class EndpointOptions:
    """What to search at `url`: `model` is the served name sent in requests, `tokenizer` the
    model spec whose tokenizer builds the prompts (exact counts only if the server shares it)."""

    url: str
    model: str | None = None
    api_key: str | None = None
    api: str = "completions"
    slo: dict[str, float] = field(default_factory=lambda: {"ttft_ms": 500.0, "tpot_ms": 50.0})
    share: float = DEFAULT_SHARE
    budget_s: float = 120.0
    stream: bool = True
    max_level: int = 64
    duration_s: float = 5.0
    warmup_s: float = 1.5
    prompt_tokens: int = 128
    output_tokens: int = 64
    tokenizer: str = "tiny"
    results_root: Path = Path("results")
    reports_root: Path = Path("reports")
    out: TextIO = field(default_factory=lambda: sys.stderr)


def parse_slo(text: str) -> dict[str, float]:
    """'ttft_ms=500,tpot_ms=50' → {'ttft_ms': 500.0, 'tpot_ms': 50.0}; ScenarioError if not."""
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise ScenarioError(f"--slo: expected key=number pairs like ttft_ms=500, got "
                                f"{part!r}")
    return out


def endpoint_scenario(opts: EndpointOptions) -> Scenario:
    """The in-memory scenario: the external target at `opts.url`, a capacity search."""
    options: dict[str, Any] = {"url": opts.url, "api": opts.api}
    options |= {k: v for k, v in (("model", opts.model), ("api_key", opts.api_key)) if v}
    return parse_scenario({
        "name": LABEL,
        "description": f"Capacity search against {opts.url} (patternbench capacity).",
        "model": opts.tokenizer,
        "workload": {"prompt_tokens": opts.prompt_tokens, "output_tokens": opts.output_tokens,
                     "stream": opts.stream, "api": opts.api},
        "load": {"kind": "capacity", "arrival": "closed", "start": 1,
                 "max_level": opts.max_level, "budget_s": opts.budget_s,
                 "duration_s": opts.duration_s, "warmup_s": opts.warmup_s},
        "slo": {**opts.slo, "share": opts.share},
        "targets": [{"name": "external", "label": LABEL, "options": options}],
    })


def run_endpoint(opts: EndpointOptions) -> tuple[str, Path, Path]:
    """Run the search and build its report: (the answer, the run folder, the report page)."""
    from harness.report.build import build_report
    from harness.run.runner import RunOptions, run_scenario

    scenario = endpoint_scenario(opts)
    run_dir = run_scenario(scenario, RunOptions(results_root=opts.results_root,
                                                reports_root=opts.reports_root, out=opts.out))
    report = build_report(run_dir, opts.reports_root)
    return answer(read_summary(RunDir(run_dir).summary)), run_dir, report


def answer(summary: RunSummary, label: str = LABEL) -> str:
    """The plain-language answer for `label`, with the verdict's reasons on the next lines."""
    info = summary.targets.get(label)
    cap = summary.capacity.get(label)
    if info is not None and info.status == "failed":
        where = f" at {info.failed_point}" if info.failed_point else ""
        why = (info.error or "the endpoint did not answer").strip()
        if cap is not None and cap.stopped == "target_died":
            return (f"No capacity: the target died{where} ({why}); the levels measured before "
                    "it are in the report, none of them is a capacity.")
        return f"Could not measure: {why}"
    if cap is None or not cap.levels:
        return "No capacity was measured (the run was interrupted before its first level)."
    lines = [_headline(cap)]
    lines += [f"  {s.text}" for s in verdict(summary, None, [label]).of_kind("reason")]
    return "\n".join(lines)


def _headline(cap: Capacity) -> str:
    slo = slo_text(cap.slo, cap.share)
    lp, ff = cap.last_pass, cap.first_fail
    fails = (f"; {ff.level:g} {'is unsure' if ff.judged == 'unsure' else 'fails: only'} "
             f"{share_text(ff.good_fraction, cap.share)} of requests met it"
             + (f" (95% interval {pct(ff.good_ci[0])}–{pct(ff.good_ci[1])})" if ff.good_ci
                else "") if ff is not None else "")
    if lp is None:
        return (f"Capacity: below {level_text(cap.axis, cap.levels[0].level)} ({slo})"
                f"{fails}.")
    bound = "≥ " if ff is None else ""
    unjudged = cap.levels[-1].why if cap.stopped == "unjudged" and cap.levels else None
    tail = {"max_level": ", the highest level searched",
            "budget": f"; the {cap.budget_s:g} s search budget ran out before it was narrowed",
            "interrupted": "; the search was interrupted",
            "unjudged": f"; the search stopped: {unjudged}"}.get(cap.stopped, "")
    return f"Capacity: {bound}{level_text(cap.axis, lp.level)} ({slo}){fails}{tail}."
