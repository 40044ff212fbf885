"""`patternbench publish DIR`: a folder ready for static hosting, built from the stored results.

DIR gets every run's report (`DIR/<run>/index.html`), the compare page of each run against the
previous run of its scenario (`DIR/compare-<a>-vs-<b>/`) and the index (`DIR/index.html`). Every
link is relative and every page self-contained (nothing fetched). Machine paths are removed
from what the pages show: the repository's folder becomes `.`, the home folder `~` (outside
the embedded images, which are left byte for byte).

    publish(Path("results"), Path("site"))  # → site/index.html
"""

from __future__ import annotations

import re
from pathlib import Path

from harness.records.atomic import write_text
from harness.report.build import build_index, build_report
from harness.run.folder import RunDir

TEXT_FILES = ("*.html", "*.md", "*.json")
DATA_URI = re.compile(r"(data:image/png;base64,[A-Za-z0-9+/=]+)")
REPO_ROOT = Path(__file__).resolve().parents[2]


def publish(results_root: Path, out_dir: Path) -> Path:
    """Write the site for every run under `results_root` into `out_dir`; return its index."""
    runs = sorted(p for p in results_root.iterdir() if RunDir(p).summary.is_file()) \
        if results_root.is_dir() else []
    for run_dir in runs:
        build_report(run_dir, out_dir, index=False)
    index = build_index(out_dir, results_root)
    prefixes = machine_paths(results_root)
    for pattern in TEXT_FILES:
        for path in out_dir.rglob(pattern):
            text = path.read_text(encoding="utf-8")
            clean = scrub(text, prefixes)
            if clean != text:
                write_text(path, clean)
    return index


def machine_paths(results_root: Path) -> list[tuple[str, str]]:
    """(path, replacement), longest first: the repository, the results folder, home."""
    pairs = {str(REPO_ROOT): ".", str(results_root.resolve()): "results",
             str(Path.cwd().resolve()): ".", str(Path.home()): "~"}
    return sorted(((p, r) for p, r in pairs.items() if len(p) > 1), key=lambda pr: -len(pr[0]))


def scrub(text: str, prefixes: list[tuple[str, str]]) -> str:
    """`text` with each machine path replaced, data URIs untouched."""
    parts = DATA_URI.split(text)
    for i in range(0, len(parts), 2):  # even parts: text between the images
        for prefix, replacement in prefixes:
            parts[i] = parts[i].replace(prefix, replacement)
    return "".join(parts)
