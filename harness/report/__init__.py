"""Report stage: a stored run folder in, one self-contained HTML page out, plus the run index.

    from harness.report.build import build_report
    page = build_report(Path("results/20261127-173500-default-abc1234"), Path("reports"))
    # → reports/20261127-173500-default-abc1234/index.html, and reports/index.html rebuilt

The page embeds its charts as PNG data URIs and its CSS inline; it fetches nothing when
viewed. Reports are always rebuilt from stored results (`manifest.json`, `summary.json`,
`telemetry/*.jsonl`); missing files or keys show as notices and "—", never as a crash.

Modules, in the order a page is made: `run_data` (read the folder), `charts` (matplotlib),
`tables` and `telemetry` (per-target HTML; `timeline` draws each target's telemetry over time),
`glossary`, `page` (assembly), `build` (writes a run's page) and `index`, with `formatting` and
`style` shared; `compare_page` renders `harness.compare`; `export` writes a run's points as
csv/md/parquet and `publish` a folder of every report for static hosting.
"""
