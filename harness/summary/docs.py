"""`python -m harness.summary.docs`: write docs/summary.schema.json and docs/results.md from the
`harness.summary` types, so the committed schema and field list are never edited by hand.

    python -m harness.summary.docs            # rewrite both files
    python -m harness.summary.docs --check    # exit 1 when either is out of date (a test runs it)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from pathlib import Path
from typing import Any, get_args, get_origin

from harness.records.atomic import write_text
from harness.records.typed_json import schema
from harness.summary.record import SCHEMA_VERSION, RunSummary

DOCS = Path(__file__).resolve().parents[2] / "docs"

INTRO = f"""# summary.json: every field

`results/<run>/summary.json` is what a run measured, one object per target × driver × load
point. The report, `patternbench gate`, `compare` and your own tools read it. Its shape is the
frozen types in `harness/summary/record.py` (schema version {SCHEMA_VERSION}); this page and the
JSON Schema [`summary.schema.json`](summary.schema.json) are generated from them by
`python -m harness.summary.docs` (a test fails when either is stale).

Units are in the names: `_ms` milliseconds, `_s` seconds, `_pct` percent (CPU: 100 per busy
core), `_mb` MiB, `_w` watts, `_j` joules, `_mhz` MHz, `req_s`/`tok_s` per second. A metric with
no value is `null`, never a silent 0. Times are measured on one monotonic clock; latencies count
from when a request was *sent* unless the name says `_sched` (from when it was *due*, so queueing
in the client counts). A file of another `schema_version` is refused with a one-line message
saying which version wrote it.

Read it in Python through the same types:

```python
from pathlib import Path
from harness.summary import read_summary

summary = read_summary(Path("results/<run>/summary.json"))
for point in summary.points:
    print(point.target, point.point, point.ttft_ms.p99 if point.ttft_ms else None)
```
"""


def type_name(tp: Any) -> str:
    """A short, readable name of a field type for the docs table."""
    if tp is Any:
        return "any JSON"
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    origin, args = get_origin(tp), get_args(tp)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(type_name(a) for a in args)
    if origin is typing.Literal:
        return " / ".join(f"`{a}`" for a in args)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return f"list of {type_name(args[0])}"
    if origin is tuple:
        return "[" + ", ".join(type_name(a) for a in args) + "]"
    if origin is dict:
        return f"object of {type_name(args[1])}"
    names = {bool: "bool", int: "int", float: "number", str: "string", type(None): "null"}
    return names.get(tp, str(tp))


def records(root: type) -> list[type]:
    """`root` and every dataclass reachable from its fields, in first-seen order."""
    seen: list[type] = []

    def visit(tp: Any) -> None:
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            if tp in seen:
                return
            seen.append(tp)
            for hint in typing.get_type_hints(tp).values():
                visit(hint)
        for arg in get_args(tp):
            visit(arg)

    visit(root)
    return seen


def results_md() -> str:
    parts = [INTRO]
    for cls in records(RunSummary):
        hints = typing.get_type_hints(cls)
        doc = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
        parts.append(f"\n## {cls.__name__}\n\n{doc}\n\n| field | type | meaning |\n|---|---|---|")
        for f in dataclasses.fields(cls):
            meaning = str(f.metadata.get("doc", "")).replace("|", "\\|")
            parts.append(f"| `{f.name}` | {type_name(hints[f.name])} | {meaning} |")
    return "\n".join(parts) + "\n"


def schema_json() -> str:
    data = schema(RunSummary, title="patternbench summary.json",
                  description=f"What a patternbench run measured (schema {SCHEMA_VERSION}).")
    return json.dumps(data, indent=2) + "\n"


def outputs() -> dict[Path, str]:
    return {DOCS / "summary.schema.json": schema_json(), DOCS / "results.md": results_md()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.summary.docs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    stale = [path for path, text in outputs().items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path} is out of date: run python -m harness.summary.docs", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs().items():
        write_text(path, text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
