"""k6 driver: the script generated per load point, and k6's per-request records as samples.

`fixtures/k6_records.json` holds console records captured from real k6 v1.1.0 runs of the
generated script: against the echo target (ok), a server answering 503 (busy), one that never
answers with a 1 s timeout (stall), and a closed port (refused).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.drivers.k6.driver import WallMap, k6_binary, read_records, samples_from_k6
from harness.drivers.k6.script import executor, render
from harness.samples import Clock
from harness.scenario import LoadPoint
from harness.workload import RequestSpec

FIXTURES = json.loads((Path(__file__).parent / "fixtures" / "k6_records.json").read_text())
SPECS = [RequestSpec(index=i, prompt="x", prompt_tokens=8 + i, max_tokens=4) for i in range(2)]


def point(kind: str, **kw: Any) -> LoadPoint:
    base: dict[str, Any] = {"name": "p", "kind": kind, "duration_s": 8.0, "warmup_s": 2.0}
    return LoadPoint(**(base | kw))


def convert(case: str) -> tuple[list[dict[str, Any]], list[Any], WallMap]:
    records = FIXTURES[case]
    wall = WallMap(wall_ns=min(r["st"] for r in records) * 1_000_000, clock_s=100.0)
    return records, samples_from_k6(records, target="t", point="p", specs=SPECS, wall=wall,
                                     stream=True), wall


def test_closed_loop_uses_constant_vus_or_shared_iterations() -> None:
    ex = executor(point("closed", concurrency=8), vus=8, timeout_s=30)
    assert ex == {"executor": "constant-vus", "vus": 8, "duration": "10000ms",
                  "gracefulStop": "30000ms"}
    capped = executor(point("closed", concurrency=8, max_requests=50), vus=8, timeout_s=30)
    assert (capped["executor"], capped["iterations"]) == ("shared-iterations", 50)


@pytest.mark.parametrize("kind", ["constant", "poisson", "gamma"])
def test_fixed_rate_kinds_use_constant_arrival_rate_at_the_mean(kind: str) -> None:
    ex = executor(point(kind, rate_rps=2.5), vus=40, timeout_s=30)
    assert (ex["executor"], ex["rate"], ex["timeUnit"]) == ("constant-arrival-rate", 2500,
                                                              "1000s")
    assert ex["maxVUs"] == 40 and 1 <= ex["preAllocatedVUs"] <= 40


def test_ramp_and_spike_use_ramping_arrival_rate_stages() -> None:
    ramp = executor(point("ramp", rate_rps=4, params={"end_rate_rps": 12}), vus=50,
                    timeout_s=30)
    assert ramp["executor"] == "ramping-arrival-rate"
    assert (ramp["startRate"], ramp["stages"]) == (4000, [{"target": 12000,
                                                           "duration": "10000ms"}])
    spike = executor(point("spike", rate_rps=4, params={"spike_rate_rps": 20,
                                                        "spike_start_s": 5,
                                                        "spike_duration_s": 2}),
                     vus=50, timeout_s=30)
    assert [(s["target"], s["duration"]) for s in spike["stages"]] == [
        (4000, "5000ms"), (20000, "0ms"), (20000, "2000ms"), (4000, "0ms"), (4000, "3000ms")]


def test_k6_accepts_the_generated_script(tmp_path: Path) -> None:
    bodies = tmp_path / "bodies.json"
    bodies.write_text(json.dumps(['{"prompt": "hi"}']), encoding="utf-8")
    script = tmp_path / "script.js"
    script.write_text(render(point("ramp", rate_rps=3, params={"end_rate_rps": 6}),
                             url="http://127.0.0.1:1/v1/completions", bodies_path=str(bodies),
                             summary_path=str(tmp_path / "s.json"), headers={}, vus=20,
                             timeout_s=5, stream=True), encoding="utf-8")
    out = subprocess.run([str(k6_binary()), "inspect", str(script)], capture_output=True,
                         text=True, timeout=60, check=True)
    scenario = json.loads(out.stdout)["scenarios"]["load"]
    assert (scenario["executor"], scenario["maxVUs"]) == ("ramping-arrival-rate", 20)


def test_ok_records_keep_k6_spans_exactly_and_have_no_token_timing() -> None:
    records, samples, wall = convert("ok")
    assert [s.status for s in samples] == ["ok"] * 3
    assert [s.scheduled_at for s in samples] == sorted(s.scheduled_at for s in samples)
    by_id = {s.request_id: s for s in samples}
    for r in records:
        s = by_id[f"t-p-{r['i']}"]
        blocked, dns, connect, tls, sending, waiting, receiving = r["t"]
        assert s.done_at == pytest.approx(wall.at(r["end"]))
        assert s.sent_at >= s.scheduled_at
        spent = blocked + dns + connect + tls + sending + waiting + receiving
        if s.sent_at > s.scheduled_at:  # not clamped to the 1 ms-resolution iteration start
            assert (s.done_at - s.sent_at) * 1000 == pytest.approx(spent)
        assert s.first_byte_at == pytest.approx(s.done_at - receiving / 1000)
        assert (s.first_token_at, s.token_times) == (None, ())
        assert (s.output_tokens, s.tokens_source, s.http_status) == (4, "usage", 200)
        assert s.prompt_tokens == SPECS[r["i"] % 2].prompt_tokens
        assert s.driver == "k6"


def test_wall_clock_milliseconds_map_onto_the_run_clock() -> None:
    wall = WallMap(wall_ns=1_700_000_000_000_000_000, clock_s=12.5)
    assert wall.at(1_700_000_000_250.0) == pytest.approx(12.75)
    clock = Clock()
    now = WallMap.now(clock)
    assert abs(now.clock_s - clock.now()) < 1.0


def test_error_records_are_classified() -> None:
    _, busy, _ = convert("busy")
    assert {(s.status, s.http_status, s.done_at) for s in busy} == {("refused", 503, None)}
    _, stall, _ = convert("stall")
    assert {s.status for s in stall} == {"timeout"}
    assert all(s.extra == {"k6_error_code": 1050, "timeout": "total"} for s in stall)
    assert all(s.error is not None and "timeout (total)" in s.error for s in stall)
    _, refused, _ = convert("refused")
    assert {(s.status, s.http_status, s.first_byte_at) for s in refused} == {
        ("conn_error", None, None)}
    assert all(s.error == "dial: connection refused" for s in refused)


def test_read_records_skips_log_lines_and_a_cut_last_line(tmp_path: Path) -> None:
    good = json.dumps(FIXTURES["ok"][0])
    path = tmp_path / "records.jsonl"
    path.write_text(f"level=warning msg=x\n{good}\n{good[:30]}", encoding="utf-8")
    assert read_records(path) == [FIXTURES["ok"][0]]
    assert read_records(tmp_path / "missing.jsonl") == []

