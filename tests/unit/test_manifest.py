"""manifest.json as a typed, versioned record: built by the runner's builder, written, read back,
validated; a manifest written before the record (no schema_version) still reads.

`fixtures/manifest_before_schema_version.json` is the manifest.json of a real `make bench` run
(scenarios/default.toml, 2 CPU cores) written before the manifest was typed.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from harness.records import docs
from harness.records.typed_json import RecordError
from harness.report.build import build_report
from harness.run.manifest import SCHEMA_VERSION, Manifest, ManifestError, read_manifest
from harness.run.resolved import Client, ResolvedPoint
from harness.scenario.client import ClientSettings
from harness.scenario.types import LoadPoint
from tests.manifests import DOCS, manifest, read_manifest_checked, scenario, write_manifest
from tests.unit.test_report import make_run

BEFORE = Path(__file__).parent / "fixtures" / "manifest_before_schema_version.json"


def before() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(BEFORE.read_text(encoding="utf-8"))
    return data


def test_a_built_manifest_is_written_and_read_back_as_the_same_record(tmp_path: Path) -> None:
    built = manifest(scenario(gates={"fastapi_batching.c8.ttft_ms.p99": "< 500"}))
    write_manifest(tmp_path, built)
    assert read_manifest_checked(tmp_path) == built
    assert built.schema_version == SCHEMA_VERSION and built.calibration is None
    written = json.loads((tmp_path / "manifest.json").read_text())
    assert "calibration" not in written  # absent, as before the record, when never calibrated
    assert list(written)[:3] == ["schema_version", "run", "created"]
    assert list(written["scenario"]) == ["name", "model", "seed", "load", "targets", "gates",
                                         "resolved"]  # the TOML's own order, resolved last
    assert built.scenario.gates == {"fastapi_batching.c8.ttft_ms.p99": "< 500"}


def test_a_manifest_written_before_the_record_was_typed_reads_as_schema_1() -> None:
    data = before()
    assert "schema_version" not in data
    jsonschema.validate(data, json.loads((DOCS / "manifest.schema.json").read_text()))
    m = Manifest.from_json(data)
    assert (m.schema_version, m.calibration, m.device) == (1, None, "cpu")
    assert (m.machine.cpu, m.machine.usable_cores, m.model.hash) == ("AMD EPYC", 2,
                                                                     "64559c81446732f6")
    resolved = m.scenario.resolved
    assert resolved is not None and [p.concurrency for p in resolved.points] == [1, 4, 8]
    assert [t.client.retry_refused if t.client else None
            for t in resolved.targets] == [0, 0, 0, 0, 0]
    assert m.scenario.name == "default" and m.scenario.gates is None
    # written back, it holds the same keys and values, in the same order, plus its version and
    # the fields added since with their defaults (the model's source: none, for a preset)
    assert m.model.source is None
    data["model"]["source"] = None
    assert json.dumps(m.to_json()) == json.dumps({"schema_version": 1} | data)


@pytest.mark.parametrize(("change", "says"), [
    (lambda d: d["machine"].update(usable_cores="2"),
     "machine.usable_cores: expected int, got '2'"),
    (lambda d: d["scenario"]["resolved"]["points"][1].update(concurrency="four"),
     "scenario.resolved.points[1].concurrency: expected int, got 'four'"),
    (lambda d: d["scenario"]["resolved"]["targets"][0].update(replicas=2),
     "scenario.resolved.targets[0]: unknown field(s) ['replicas']"),
    (lambda d: d["scenario"].update(name=7), "scenario.name: expected str, got 7"),
    (lambda d: d.update(colour="blue"), "(top level): unknown field(s) ['colour']"),
    (lambda d: d.pop("model"), "model: missing"),
])
def test_a_field_that_does_not_fit_is_a_record_error_naming_its_path(change: Any,
                                                                     says: str) -> None:
    data = before()
    change(data)
    with pytest.raises(RecordError) as info:
        Manifest.from_json(data)
    assert str(info.value).startswith(f"manifest.json does not fit schema 1: {says}")
    assert "\n" not in str(info.value)


def test_the_scenario_s_own_tables_stay_as_written() -> None:
    """Only name, description and gates of the tables as written are typed: a table a later
    scenario format adds reads back untouched."""
    data = before()
    data["scenario"]["warmup"] = {"requests": 3}
    m = Manifest.from_json(data)
    assert m.scenario.tables["warmup"] == {"requests": 3}
    assert m.to_json()["scenario"]["warmup"] == {"requests": 3}


def test_the_report_of_a_run_whose_manifest_does_not_fit_says_which_field(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path / "results", "20261127-173500-default-abc1234",
                       "2026-11-27T17:35:00+00:00")
    data = json.loads((run_dir / "manifest.json").read_text())
    data["machine"]["usable_cores"] = "two"
    (run_dir / "manifest.json").write_text(json.dumps(data))
    html = build_report(run_dir, tmp_path / "reports").read_text(encoding="utf-8")
    assert ("manifest.json does not fit schema 1: machine.usable_cores: expected int, got "
            "&#x27;two&#x27;") in html
    assert "No manifest was found for this run." in html


def test_another_version_or_no_file_is_a_one_line_manifest_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"^manifest\.json is missing$"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps(before() | {"schema_version": 2}))
    with pytest.raises(ManifestError, match=r"newer version of patternbench \(schema 2; this "
                                            r"one reads 1\): upgrade patternbench"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("[]")
    with pytest.raises(ManifestError, match="does not hold a JSON object"):
        read_manifest(tmp_path)


def test_the_resolved_scenario_records_every_client_and_point_setting() -> None:
    """A setting the scenario gains must be recorded too: these records copy theirs by name."""
    names = [f.name for f in dataclasses.fields(Client)]
    assert names == [f.name for f in dataclasses.fields(ClientSettings)]
    assert {f.name for f in dataclasses.fields(ResolvedPoint)} == {
        f.name for f in dataclasses.fields(LoadPoint)}


@pytest.mark.parametrize("stale", ["manifest.schema.json", "calibration.schema.json",
                                   "summary.schema.json", "results.md"])
def test_the_docs_check_fails_when_any_record_s_schema_or_fields_are_stale(
        stale: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(docs, "DOCS", tmp_path)
    assert docs.main([]) == 0
    assert docs.main(["--check"]) == 0
    path = tmp_path / stale
    path.write_text(path.read_text().replace("usable_cores", "cores_usable")
                    .replace("schema_version", "version"))
    assert docs.main(["--check"]) == 1
    assert f"{path} is out of date" in capsys.readouterr().err
