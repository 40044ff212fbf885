"""No key given to a run ends up in its folder or its report (`harness.records.redact`)."""

from __future__ import annotations

from pathlib import Path

from harness.records.atomic import write_json
from harness.records.redact import REDACTED, redact
from harness.report.build import build_report
from harness.run.folder import RunDir
from harness.run.manifest import build_manifest
from harness.scenario.load import parse_scenario
from harness.summary.record import TargetRun
from tests.manifests import GIT, MODEL
from tests.summaries import typed_point, write_summary

KEY = "sk-test-0123456789abcdef"
UPSTREAM_KEY = "sk-upstream-fedcba9876543210"


def test_redact_masks_credentials_at_any_depth_and_nothing_else() -> None:
    options = {"url": "http://127.0.0.1:9", "api_key": KEY, "max_tokens": 16,
               "upstream_options": {"upstream_api_key": UPSTREAM_KEY, "workers": 2},
               "headers": [{"Authorization": f"Bearer {KEY}"}], "api_key_empty": None}
    masked = redact(options)
    assert masked == {"url": "http://127.0.0.1:9", "api_key": REDACTED, "max_tokens": 16,
                      "upstream_options": {"upstream_api_key": REDACTED, "workers": 2},
                      "headers": [{"Authorization": REDACTED}], "api_key_empty": None}
    assert options["api_key"] == KEY  # a copy: the launcher still has the key


def test_a_run_with_api_keys_keeps_them_out_of_its_folder_and_report(tmp_path: Path) -> None:
    scenario = parse_scenario({
        "name": "keys",
        "targets": [
            {"name": "external", "label": "ext",
             "options": {"url": "http://127.0.0.1:9", "api_key": KEY}},
            {"name": "fastapi_proxy", "options": {"upstream_api_key": UPSTREAM_KEY}},
        ],
        "load": {"kind": "closed", "concurrency": [1], "duration_s": 1},
    })
    run = RunDir(tmp_path / "results" / "run-1")
    manifest = build_manifest(scenario, run, results_root=tmp_path / "results",
                              scenario_file=None, device="cpu", model=MODEL, git=GIT)
    write_json(run.manifest, manifest.to_json())
    targets = {t.label: TargetRun(name=t.name, options=dict(t.options), status="ok")
               for t in scenario.targets}
    point = typed_point("ext", "c1", scenario.points[0].load())
    write_summary(run.path, [point], targets)
    report = build_report(run.path, tmp_path / "reports")
    files = [*run.path.rglob("*"), *report.parent.rglob("*")]
    texts = [f.read_text(encoding="utf-8") for f in files if f.is_file()]
    assert len(texts) >= 3 and REDACTED in "".join(texts)
    for secret in (KEY, UPSTREAM_KEY):
        assert not any(secret in text for text in texts), secret
