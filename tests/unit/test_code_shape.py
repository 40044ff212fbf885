"""The code stays readable in pieces: no function over 60 lines, no module over 420, unless the
function's `def` line says why (`# long: <reason>`).

ruff's complexity rules (C90, PLR0912, PLR0915 in pyproject.toml) bound branches and statements;
this bounds length, which they do not see (a long call or a long literal). STYLE.md asks for
modules near 150-250 lines, split before ~400.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("harness", "targets", "scripts", "tests")  # tests are read and kept up like code
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 420


def python_files() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def long_functions(path: Path, root: Path = ROOT, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """`file:line name (N lines)` for each function longer than `limit` without a reason."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    out = []
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        header = lines[node.lineno - 1:node.body[0].lineno - 1]
        if length > limit and not any("# long:" in line for line in header):
            out.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)")
    return out


def test_no_function_is_over_60_lines_without_a_reason() -> None:
    found = [f for path in python_files() for f in long_functions(path)]
    assert not found, "split these functions or say why beside the def (# long: ...):\n" + \
        "\n".join(found)


def test_no_module_is_over_420_lines() -> None:
    sizes = {p: len(p.read_text(encoding="utf-8").splitlines()) for p in python_files()}
    big = [f"{p.relative_to(ROOT)} ({n} lines)" for p, n in sizes.items() if n > MAX_MODULE_LINES]
    assert not big, "split these modules by concept:\n" + "\n".join(big)


def test_the_length_check_finds_a_long_function_and_honours_a_reason(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(70))
    plain = tmp_path / "plain.py"
    plain.write_text(f"def big() -> None:\n{body}", encoding="utf-8")
    excused = tmp_path / "excused.py"
    excused.write_text(f"def big() -> None:  # long: a table of 70 constants\n{body}",
                       encoding="utf-8")
    assert long_functions(plain, tmp_path) == ["plain.py:1 big (71 lines)"]
    assert long_functions(excused, tmp_path) == []
