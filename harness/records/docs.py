"""`python -m harness.records.docs`: write the JSON Schema of every record file a run writes
(docs/summary.schema.json, docs/manifest.schema.json, docs/calibration.schema.json) and their
field list, docs/results.md, from the types, so none of them is ever edited by hand.

    python -m harness.records.docs            # rewrite every file
    python -m harness.records.docs --check    # exit 1 when one is out of date (a test runs it)

A field whose metadata says `inline` (`harness.run.resolved.ScenarioAsRun.tables`) is not a key
of its own: its keys are the object's, so the schema allows them as `additionalProperties`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin

from harness.records.atomic import write_text
from harness.records.typed_json import schema
from harness.run import calibration, manifest
from harness.summary import record as summary

DOCS = Path(__file__).resolve().parents[2] / "docs"

INTRO = """# Result files: every field

A run writes three JSON files whose shape is a set of frozen types, each built by the stage that
computes it and read back through the same types by the report, `patternbench gate`, `compare`
and your own tools:

- [`summary.json`](#summaryjson): what the run measured (`harness/summary/record.py`);
- [`manifest.json`](#manifestjson): what the run was: the scenario, the code, the machine, the
  model (`harness/run/manifest.py`);
- [`calibration.json`](#calibrationjson): the load drivers' own overhead on this machine, from
  `patternbench calibrate`, which later runs copy into their manifest
  (`harness/run/calibration.py`).

This page and the JSON Schemas [`summary.schema.json`](summary.schema.json),
[`manifest.schema.json`](manifest.schema.json) and
[`calibration.schema.json`](calibration.schema.json) are generated from the types by
`python -m harness.records.docs` (a test fails when one is stale). Each file carries its
`schema_version`; a file of another version is refused with a one-line message saying which
version wrote it, and a file that does not fit with the path of the first field that does not.

Units are in the names: `_ms` milliseconds, `_s` seconds, `_pct` percent (CPU: 100 per busy
core), `_mb` MiB, `_gb` GiB, `_w` watts, `_j` joules, `_mhz` MHz, `req_s`/`tok_s` per second. A
metric with no value is `null`, never a silent 0.
"""

PARTS = {
    "summary.json": """
## summary.json

`results/<run>/summary.json` is what a run measured, one object per target × driver × load
point (schema version {version}). Times are measured on one monotonic clock; latencies count
from when a request was *sent* unless the name says `_sched` (from when it was *due*, so queueing
in the client counts).

```python
from pathlib import Path
from harness.summary import read_summary

summary = read_summary(Path("results/<run>/summary.json"))
for point in summary.points:
    print(point.target, point.point, point.ttft_ms.p99 if point.ttft_ms else None)
```
""",
    "manifest.json": """
## manifest.json

`results/<run>/manifest.json` is what a run was (schema version {version}), written before its
first point: the scenario as written with every setting resolved, the commit, the package
versions, the machine, the device, the model and its hash, the seed, and the calibration of its
results folder when there is one. Its `scenario` holds the scenario file's own tables as written
(opaque JSON but for `name`, `description` and `gates`) with `resolved` beside them. A manifest
written before the record was typed has no `schema_version` and reads as schema 1.

```python
from pathlib import Path
from harness.run.manifest import read_manifest

manifest = read_manifest(Path("results/<run>"))
print(manifest.model.hash, manifest.machine.usable_cores, manifest.device)
```
""",
    "calibration.json": """
## calibration.json

`results/calibration.json` is what `patternbench calibrate` measured (schema version
{version}): each driver against the zero-work echo target, the floor under every figure it
reports. Every later run under the same results folder copies it into its manifest
(`calibration`). One written before the record was typed has no `schema_version` and reads as
schema 1.

```python
from pathlib import Path
from harness.run.calibration import read_calibration

calibration = read_calibration(Path("results/calibration.json"))
print({name: floor.max_req_s for name, floor in calibration.drivers.items()})
```
""",
}


@dataclass(frozen=True)
class RecordFile:
    """One record file: its name, the root type, its version and what the schema says it is."""

    name: str
    root: type
    version: int
    description: str

    @property
    def schema_name(self) -> str:
        return self.name.replace(".json", ".schema.json")


FILES = (
    RecordFile("summary.json", summary.RunSummary, summary.SCHEMA_VERSION,
               "What a patternbench run measured"),
    RecordFile("manifest.json", manifest.Manifest, manifest.SCHEMA_VERSION,
               "What a patternbench run was: scenario, code, machine, model"),
    RecordFile("calibration.json", calibration.Calibration, calibration.SCHEMA_VERSION,
               "The overhead of patternbench's load drivers on one machine"),
)


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


def records(root: type, stop: frozenset[type] = frozenset()) -> list[type]:
    """`root` and every dataclass reachable from its fields, in first-seen order; the types in
    `stop` (another file's root) are neither listed nor entered."""
    seen: list[type] = []

    def visit(tp: Any) -> None:
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            if tp in seen or tp in stop:
                return
            seen.append(tp)
            for hint in typing.get_type_hints(tp).values():
                visit(hint)
        for arg in get_args(tp):
            visit(arg)

    visit(root)
    return seen


def _inline(field: dataclasses.Field[Any]) -> bool:
    return bool(field.metadata.get("inline"))


def _section(cls: type) -> list[str]:
    hints = typing.get_type_hints(cls)
    doc = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
    rows = [f"\n### {cls.__name__}\n\n{doc}\n\n| field | type | meaning |\n|---|---|---|"]
    for f in dataclasses.fields(cls):
        meaning = str(f.metadata.get("doc", "")).replace("|", "\\|")
        name = "*(its other keys)*" if _inline(f) else f"`{f.name}`"
        shown = get_args(hints[f.name])[1] if _inline(f) else hints[f.name]
        rows.append(f"| {name} | {type_name(shown)} | {meaning} |")
    return rows


def results_md() -> str:
    parts = [INTRO]
    done: set[type] = set()
    roots = frozenset(f.root for f in FILES)
    for file in FILES:
        parts.append(PARTS[file.name].replace("{version}", str(file.version)))
        for cls in records(file.root, roots - {file.root}):
            if cls not in done:
                done.add(cls)
                parts += _section(cls)
    return "\n".join(parts) + "\n"


def _open_inline_fields(data: dict[str, Any], root: type) -> dict[str, Any]:
    """The schema with each `inline` field's keys allowed as the object's own."""
    for cls in records(root):
        for f in dataclasses.fields(cls):
            if _inline(f):
                node = data["$defs"][cls.__name__] if cls is not root else data
                value = node["properties"].pop(f.name)
                node["required"] = [r for r in node["required"] if r != f.name]
                node["additionalProperties"] = ({"description": value["description"]}
                                                | value["additionalProperties"])
    return data


def schema_json(file: RecordFile) -> str:
    data = schema(file.root, title=f"patternbench {file.name}",
                  description=f"{file.description} (schema {file.version}).")
    return json.dumps(_open_inline_fields(data, file.root), indent=2) + "\n"


def outputs() -> dict[Path, str]:
    out = {DOCS / file.schema_name: schema_json(file) for file in FILES}
    return out | {DOCS / "results.md": results_md()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.records.docs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    stale = [path for path, text in outputs().items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path} is out of date: run python -m harness.records.docs", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs().items():
        write_text(path, text)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
