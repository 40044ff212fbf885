"""`patternbench publish`: machine paths leave the pages, embedded images stay byte for byte."""

from __future__ import annotations

from pathlib import Path

from harness.report.publish import REPO_ROOT, machine_paths, scrub


def test_machine_paths_are_replaced_outside_images(tmp_path: Path) -> None:
    home = str(Path.home())
    image = "data:image/png;base64,iVBORw0KGgo" + home.replace("/", "+/") + "AAAA=="
    text = (f"<dd>{home}/.cache/patternbench/models/tiny-34d5</dd><img src='{image}'>"
            f"<dd>{REPO_ROOT}/scenarios/default.toml</dd><pre>{tmp_path}/results/r1</pre>")
    clean = scrub(text, machine_paths(tmp_path / "results"))
    assert "<dd>~/.cache/patternbench/models/tiny-34d5</dd>" in clean
    assert "<dd>./scenarios/default.toml</dd>" in clean and "<pre>results/r1</pre>" in clean
    assert f"src='{image}'" in clean and str(REPO_ROOT) not in clean


def test_the_longest_prefix_wins() -> None:
    pairs = machine_paths(REPO_ROOT / "results")
    assert [p for p, _ in pairs] == sorted((p for p, _ in pairs), key=len, reverse=True)
    assert (str(REPO_ROOT / "results"), "results") in pairs
