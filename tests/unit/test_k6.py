"""k6 driver: the script generated per load point, and k6's per-request records as samples.

`fixtures/k6_records.json` holds console records captured from real k6 v1.1.0 runs of the
generated script: against the echo target (ok), a server answering 503 (busy), one that never
answers with a 1 s timeout (stall), and a closed port (refused).
"""

from __future__ import annotations

import json
import math
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from harness.drivers.job import Progress
from harness.drivers.k6.driver import (
    WallMap,
    k6_binary,
    note_summary,
    planned_starts,
    read_records,
    samples_from_k6,
)
from harness.drivers.k6.script import executor, render, ticks
from harness.samples import Clock, SampleExtra
from harness.scenario.types import LoadPoint
from harness.workload.prompts import RequestSpec

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
        assert (s.done_at - s.sent_at) * 1000 == pytest.approx(spent)  # never clamped
        assert s.scheduled_at == min(s.sent_at, wall.at(r["t0"]))  # closed loop: its start
        assert s.failed_at is None
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
    records, busy, wall = convert("busy")
    assert {(s.status, s.http_status, s.done_at) for s in busy} == {("refused", 503, None)}
    ends = sorted(wall.at(r["end"]) for r in records)
    assert sorted(s.failed_at for s in busy if s.failed_at is not None) == pytest.approx(ends)
    _, stall, _ = convert("stall")
    assert {s.status for s in stall} == {"timeout"}
    assert all(s.extra == SampleExtra(k6_error_code=1050, timeout="total") for s in stall)
    assert all(s.error is not None and "timeout (total)" in s.error for s in stall)
    _, refused, _ = convert("refused")
    assert {(s.status, s.http_status, s.first_byte_at) for s in refused} == {
        ("conn_error", None, None)}
    assert all(s.error == "dial: connection refused" for s in refused)


def test_a_request_resent_after_a_stale_connection_is_one_ok_sample_marked_resent() -> None:
    """The script sends a request again once when k6 got no answer on a kept-alive connection the
    server had closed ("EOF"); its record carries `"r": true` and the answer of the resend."""
    records = [FIXTURES["ok"][0] | {"r": True}, FIXTURES["ok"][1]]
    wall = WallMap(wall_ns=min(r["st"] for r in records) * 1_000_000, clock_s=100.0)
    by_id = {s.request_id: s for s in samples_from_k6(records, target="t", point="p",
                                                       specs=SPECS, wall=wall, stream=True)}
    resent, plain = (by_id[f"t-p-{r['i']}"] for r in records)
    assert (resent.status, resent.extra.resent) == ("ok", True)
    assert (plain.status, plain.extra.resent) == ("ok", None)


def test_read_records_skips_log_lines_and_a_cut_last_line(tmp_path: Path) -> None:
    good = json.dumps(FIXTURES["ok"][0])
    path = tmp_path / "records.jsonl"
    path.write_text(f"level=warning msg=x\n{good}\n{good[:30]}", encoding="utf-8")
    assert read_records(path) == [FIXTURES["ok"][0]]
    assert read_records(tmp_path / "missing.jsonl") == []



def test_ticks_follow_k6s_executor_formulas() -> None:
    constant = ticks(executor(point("constant", rate_rps=2.5), vus=40, timeout_s=30))
    assert len(constant) == 25 and constant[:3] == pytest.approx([0.0, 0.4, 0.8])
    # ramp 4 -> 12 req/s over 10 s: count(t) = 4t + 0.4t^2; event n where count(t) = n
    ramp = ticks(executor(point("ramp", rate_rps=4, params={"end_rate_rps": 12}), vus=50,
                          timeout_s=30))
    assert len(ramp) == 80
    assert ramp[0] == pytest.approx((-4 + math.sqrt(16 + 1.6)) / 0.8)
    assert ramp[-1] == pytest.approx(10.0)
    assert ticks(executor(point("closed", concurrency=2), vus=2, timeout_s=30)) == []


def late(lag_ms: int, count: int = 20) -> list[dict[str, Any]]:
    """k6 records shaped like the fixture's: one tick per 10 ms, each iteration starting
    `lag_ms` after its tick (a k6 process too busy to fire its ticks on time)."""
    base, st = FIXTURES["ok"][0], FIXTURES["ok"][0]["st"]
    return [base | {"i": j, "t0": st + 10 * j + lag_ms, "end": st + 10 * j + lag_ms + 5}
            for j in range(count)]


def test_open_loop_iterations_are_dated_by_the_tick_they_served() -> None:
    records, _, _ = convert("ok")
    st = records[0]["st"]
    # three ticks 1 ms apart; iterations 0, 1, 2 started at +0, +1, +5 ms: the third 3 ms late
    assert planned_starts(records, [0.0, 0.001, 0.002], dropped=0) == {
        0: st, 1: st + 1, 2: st + 2}
    wall = WallMap(wall_ns=st * 1_000_000, clock_s=100.0)
    tick_s = [j * 0.01 for j in range(20)]
    samples = samples_from_k6(late(15), target="t", point="p", specs=SPECS, wall=wall,
                              stream=True, tick_s=tick_s)
    assert [s.scheduled_at for s in samples] == pytest.approx([100 + t for t in tick_s])
    spans = sum(FIXTURES["ok"][0]["t"]) / 1000
    assert {round((s.sent_at - s.scheduled_at) * 1000, 3) for s in samples} == {
        round(20 - spans * 1000, 3)}
    # with drops k6 does not say where: the least lag consistent with the order (lower bound)
    lower = planned_starts(late(15), [*tick_s, 0.2, 0.21], dropped=2)
    assert [lower[j] - st for j in range(20)] == [10 * j + 10 for j in range(20)]
    assert planned_starts(late(0), [], dropped=0) == {}


def test_k6_summary_sets_dropped_and_capacity(tmp_path: Path) -> None:
    path = tmp_path / "k6-summary.json"
    path.write_text(json.dumps(FIXTURES["summary"]["stall"]), encoding="utf-8")
    progress = Progress()
    note_summary(progress, path)
    assert (progress.dropped, progress.stats["dropped_iterations"]) == (1, 1)
    assert progress.cpu_capacity_pct is not None and progress.cpu_capacity_pct >= 100
    missing = Progress()
    note_summary(missing, tmp_path / "none.json")
    assert (missing.dropped, missing.stats) == (None, {})


def test_streamed_bodies_without_usage_count_their_text_events(tmp_path: Path) -> None:
    """The script's own token counting, run by k6 against a server that sends no usage."""
    records = run_script_against(tmp_path, [b'data: {"choices":[{"text":"a"}]}',
                                            b'data: {"choices":[{"text":""}]}',
                                            b'data: {"choices":[{"text":"b c"}]}',
                                            b"data: [DONE]"])
    assert [(r["n"], r["src"], r["done"]) for r in records] == [(2, "counted", True)]
    (sample,) = samples_from_k6(records, target="t", point="p", specs=SPECS,
                                wall=WallMap(0, 0.0), stream=True)
    assert (sample.output_tokens, sample.tokens_source) == (2, "counted")


def run_script_against(tmp_path: Path, events: list[bytes]) -> list[dict[str, Any]]:
    """Run the generated script (closed loop, one request) against a one-shot SSE server."""
    body = b"".join(e + b"\n\n" for e in events)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server calls it by this name
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        (tmp_path / "bodies.json").write_text(json.dumps(['{"prompt": "hi"}']))
        script = tmp_path / "script.js"
        script.write_text(render(point("closed", concurrency=1, max_requests=1),
                                 url=f"http://127.0.0.1:{server.server_port}/v1/completions",
                                 bodies_path=str(tmp_path / "bodies.json"),
                                 summary_path=str(tmp_path / "s.json"), headers={}, vus=1,
                                 timeout_s=5, stream=True), encoding="utf-8")
        out = tmp_path / "records.jsonl"
        subprocess.run([str(k6_binary()), "run", "--quiet", "--no-color", "--log-format", "raw",
                        "--console-output", str(out), "--address", "", "--no-usage-report",
                        str(script)], capture_output=True, timeout=60, check=True, cwd=tmp_path)
        return read_records(out)
    finally:
        server.shutdown()
        server.server_close()


def test_ramping_ticks_are_aligned_on_the_least_late_iteration() -> None:
    """ramping-arrival-rate starts its tick clock once its VUs are active, a few ms after the
    scenario start that the records carry: a common delay is not lag, a further one is."""
    st, tick_s = FIXTURES["ok"][0]["st"], [j * 0.01 for j in range(20)]
    records = late(6)
    records[7] = records[7] | {"t0": records[7]["t0"] + 8}  # one iteration 8 ms late
    planned = planned_starts(records, tick_s, dropped=0, align=True)
    assert [planned[j] - st for j in range(20)] == pytest.approx([10 * j + 6 for j in range(20)])
    assert records[7]["t0"] - planned[7] == pytest.approx(8)  # its own lag stays
    capped = planned_starts(late(80), tick_s, dropped=0, align=True)  # shifted 50 ms at most
    assert [capped[j] - st for j in range(20)] == pytest.approx([10 * j + 50 for j in range(20)])
    assert planned_starts(late(6), tick_s, dropped=0)[0] == st  # constant-arrival-rate: exact
