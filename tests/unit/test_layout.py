"""`ls harness/` is the pipeline: every top-level entry is named, in data-flow order, by the
package docstring and by the README's Layout section, and none of them is a prefix family
(`scenario_a.py`, `scenario_b.py`: a package in disguise)."""

from __future__ import annotations

import re
from pathlib import Path

import harness

ROOT = Path(__file__).resolve().parents[2]
MAX_ENTRIES = 16  # STYLE.md: a newcomer reads the pipeline in one `ls`; more is a grab-bag
ENTRY = re.compile(r"^ +([a-z_]+(?:/|\.py)) {2,}", re.MULTILINE)


def entries_on_disk(root: Path = ROOT / "harness") -> set[str]:
    return {p.name + ("/" if p.is_dir() else "") for p in root.iterdir()
            if p.name not in ("__init__.py", "__pycache__") and not p.name.startswith(".")}


def named(text: str) -> list[str]:
    """The `name/` or `name.py` entries a layout block lists at the start of its lines."""
    return ENTRY.findall(text)


def readme_layout(readme: str) -> str:
    block = readme.split("## Layout", 1)[1].split("```")[1]
    return block.split("\ntargets/", 1)[0]


def beside(text: str) -> list[str]:
    """The entries a "beside it" / "Beside the pipeline" sentence names (`cli/ (...)`)."""
    tail = re.split(r"[Bb]eside (?:it|the pipeline)", text, maxsplit=1)[1]
    return re.findall(r"\b([a-z_]+/)", tail)


def test_the_package_docstring_names_every_entry_of_harness() -> None:
    doc = harness.__doc__ or ""
    assert sorted(named(doc)) == sorted(entries_on_disk())


def test_the_readme_names_the_same_entries_in_the_same_order() -> None:
    layout = readme_layout((ROOT / "README.md").read_text(encoding="utf-8"))
    doc = harness.__doc__ or ""
    pipeline = doc.split("Beside the pipeline")[0]
    assert named(layout) == named(pipeline)
    assert beside(layout) == named(doc.split("Beside the pipeline")[1])


def test_harness_has_few_top_level_entries_and_no_prefix_family() -> None:
    found = entries_on_disk()
    assert len(found) <= MAX_ENTRIES, sorted(found)
    stems = [name.rstrip("/").removesuffix(".py") for name in found]
    families = {s.split("_")[0] for s in stems if "_" in s}
    crowded = {f: [s for s in stems if s.split("_")[0] == f] for f in families}
    assert not {f: s for f, s in crowded.items() if len(s) > 1}


def test_the_entry_reader_reads_a_layout_block(tmp_path: Path) -> None:
    block = "x\n  scenario/     a thing\n  arrivals.py   another\n  not an entry\n"
    assert named(block) == ["scenario/", "arrivals.py"]
    (tmp_path / "scenario").mkdir()
    (tmp_path / "arrivals.py").write_text("", encoding="utf-8")
    (tmp_path / "__init__.py").write_text("", encoding="utf-8")
    assert entries_on_disk(tmp_path) == {"scenario/", "arrivals.py"}
