"""The run folder: a new one per run, never reused, and files written whole or not at all."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.records.atomic import read_json, write_json, write_text
from harness.run.folder import RunDir


def test_a_new_run_folder_is_named_after_scenario_and_commit_and_never_reused(
        tmp_path: Path) -> None:
    first = RunDir.create(tmp_path, "default", "0123456789abcdef")
    second = RunDir.create(tmp_path, "default", "0123456789abcdef")
    assert first.path.is_dir() and second.path.is_dir() and first != second
    day, clock, scenario, sha = first.name.split("-")[:4]
    assert (len(day), len(clock), scenario, sha) == (8, 6, "default", "0123456")
    if first.name[:15] == second.name[:15]:  # the same second: a numbered suffix
        assert second.name == first.name + "-2"
    assert RunDir.create(tmp_path, "x", None).name.endswith("-x-nogit")


def test_written_files_are_complete_readable_and_leave_no_temp_file(tmp_path: Path) -> None:
    path = write_json(tmp_path / "deep" / "summary.json", {"points": [1, 2]})
    assert read_json(path) == {"points": [1, 2]}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    write_text(path, (part for part in ("a", "b", "\n")))
    assert path.read_text(encoding="utf-8") == "ab\n"

    def broken() -> Iterator[str]:
        yield "half a file"
        raise RuntimeError("the writer died")

    with pytest.raises(RuntimeError):
        write_text(path, broken())
    assert path.read_text(encoding="utf-8") == "ab\n"  # the old file, whole
    assert [p.name for p in path.parent.iterdir()] == ["summary.json"]
