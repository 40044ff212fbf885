"""The rolling fault without servers: its `[fault]` table and the targets' own keys, the balancer's
configuration and its missing binary, and the deploy's record computed from samples shaped like
the builtin driver's through HAProxy (error texts copied from a real run)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.drivers.job import Progress
from harness.metrics.rolling import DeploySteps, cut, failure_kind, rolling_summary
from harness.run.balancer import Checks, config, haproxy_binary
from harness.run.launcher import LaunchError, TargetProcess
from harness.run.point import PointWatch
from harness.run.rolling import open_fleet
from harness.samples import Sample, SampleExtra, Status
from harness.scenario.client import ClientSettings
from harness.scenario.decode import ScenarioError
from harness.scenario.fault import Fault
from harness.scenario.load import parse_scenario
from harness.scenario.types import LoadPoint
from harness.summary.rolling import Replacement
from harness.verdict.rolling import sentence, variant_name
from tests.jobs import job_for

BASE: dict[str, Any] = {"load": {"kind": "closed", "concurrency": [8], "duration_s": 60},
                        "fault": {"kind": "rolling", "replicas": 3, "at_s": 5.0}}
HAPROXY_503 = ("<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle "
               "this request.\n</body></html>\n")
HAPROXY_502 = ("<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or "
               "incomplete response.\n</body></html>\n")
DRAINING_503 = ('{"error":{"message":"the server is shutting down; retry","type":'
                '"server_overloaded","param":null,"code":"shutting_down"}}')
CUT = ("ClientPayloadError: Response payload is not completed: <TransferEncodingError: 400, "
       "message='Not enough data to satisfy transfer length header.'>")


def scenario(targets: list[Any], **top: Any) -> Any:
    return parse_scenario({**BASE, "targets": targets, **top})


def test_each_target_sets_its_own_variant_of_the_deploy() -> None:
    s = scenario([{"name": "fastapi_batching", "label": "kill",
                   "fault": {"stop": "kill", "gate": False}},
                  {"name": "vllm", "fault": {"replicas": 2}}, "flask_threads"])
    kill, vllm, plain = (t.effective_fault(s.fault) for t in s.targets)
    assert s.fault == Fault(kind="rolling", replicas=3, at_s=5.0)
    assert (kill.stop, kill.gate, kill.replicas) == ("kill", False, 3)
    assert (vllm.stop, vllm.gate, vllm.replicas) == ("drain", True, 2)
    assert plain == s.fault


@pytest.mark.parametrize(("change", "message"), [
    ({"fault": {"kind": "rolling", "replicas": 1}}, "fault.replicas: must be ≥ 2, got 1"),
    ({"fault": {"kind": "rolling", "stop": "nuke"}},
     "fault.stop: must be one of 'drain', 'kill', got 'nuke'"),
    ({"fault": {"kind": "rolling", "replica": 3}}, "fault: unknown key 'replica' for kind "
     "'rolling'; expected one of after_s, at_s, check_interval_s, fall, gate, kind, "
     "ready_timeout_s, replicas, stop, surge"),
    ({"fault": {"kind": "rolling", "gate": "yes"}}, "fault.gate: must be true or false, "
     "got 'yes'"),
    ({"targets": [{"name": "echo", "fault": {"gat": False}}]}, "targets[0].fault: unknown key "
     "'gat'; expected one of after_s, at_s, check_interval_s, fall, gate, ready_timeout_s, "
     "replicas, stop, surge"),
    ({"fault": {"kind": "disconnect"}, "targets": [{"name": "echo", "fault": {"gate": False}}]},
     "targets[0].fault: a target's fault table needs [fault] kind = 'rolling' (its keys set "
     "that target's deploy)"),
    ({"driver": "k6"}, "fault.kind: 'rolling' is run by the builtin driver only, not 'k6': its "
     "load ends when the deploy is over"),
    ({"load": {"kind": "closed", "concurrency": [4, 8], "duration_s": 60}},
     "fault.kind: 'rolling' replaces the target's replicas during its load, so the scenario "
     "must have one load point, got 2"),
])
def test_a_wrong_rolling_fault_is_refused_at_load_in_one_line(change: dict[str, Any],
                                                              message: str) -> None:
    raw = {**BASE, "targets": ["echo"], **change}
    with pytest.raises(ScenarioError) as info:
        parse_scenario(raw)
    assert str(info.value) == message


def test_a_missing_haproxy_is_one_line_naming_the_package_before_any_replica_starts(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no haproxy on it
    started: list[int] = []

    def spawn(slot: int, cancelled: Any) -> Any:
        started.append(slot)
        raise AssertionError("no replica may start without a balancer")

    with pytest.raises(LaunchError) as info:
        open_fleet("t", Fault(kind="rolling", replicas=2), spawn, tmp_path)
    message = str(info.value)
    assert "apt-get install haproxy" in message and "\n" not in message
    assert started == []


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy is not installed "
                    "(apt-get install haproxy)")
def test_the_balancer_configuration_is_one_haproxy_accepts(tmp_path: Path) -> None:
    text = config(8000, [8101, 8102], 4, tmp_path / "admin.sock", Checks(0.5, 3))
    cfg = tmp_path / "lb.cfg"
    cfg.write_text(text)
    check = subprocess.run([haproxy_binary(), "-c", "-f", str(cfg)], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "server r0 127.0.0.1:8101 check" in text and "server r1 127.0.0.1:8102 check" in text
    assert "server r3 127.0.0.1:1 check disabled" in text  # a slot the deploy fills
    assert "default-server inter 500 fall 3 rise 1" in text and "retries 0" in text


def sample(i: int, due: float, end: float, status: Status = "ok", http: int | None = 200,
           error: str | None = None, attempt: int = 1) -> Sample:
    ok = status == "ok"
    first = due + 0.1 if ok or status == "truncated" else None
    return Sample(request_id=f"r{i}", target="t", point="c8", scheduled_at=due,
                  sent_at=due + (attempt - 1) * 0.2, status=status, first_byte_at=first,
                  first_token_at=first, token_times=(first,) if first is not None else (),
                  done_at=end if ok else None, failed_at=None if ok else end,
                  http_status=http, error=error,
                  extra=SampleExtra(attempt=attempt if attempt > 1 else None))


def replacement(i: int, signal_at: float, in_flight: int) -> Replacement:
    return Replacement(index=i, old=f"r{i}", new=f"r{i + 2}", old_pid=100 + i, new_pid=200 + i,
                       started_at_s=signal_at - 3, ready_at_s=signal_at - 0.5,
                       up_at_s=signal_at - 0.4, out_of_rotation_at_s=signal_at + 1.1,
                       signal="SIGKILL", signal_at_s=signal_at, exit_at_s=signal_at + 0.05,
                       exit_code=-9, drain_s=0.05, in_flight_at_signal=in_flight)


def test_the_record_counts_cuts_per_replacement_and_failures_by_kind() -> None:
    samples = [
        sample(0, 2.0, 3.0), sample(1, 3.0, 4.5),  # steady: due before the deploy (t=5)
        sample(2, 6.0, 9.0, "truncated", error=CUT),  # cut by the first kill (t=8)
        sample(3, 7.0, 8.0, "truncated", error=CUT),
        sample(4, 8.5, 8.6, "refused", 503, HAPROXY_503),  # the balancer had not noticed
        sample(5, 8.7, 8.8, "http_error", 502, HAPROXY_502),
        sample(6, 9.0, 9.1, "refused", 503, DRAINING_503),
        sample(6, 9.0, 10.0, attempt=2),  # its resend was answered
        sample(7, 10.0, 12.1, "truncated", error=CUT),  # cut by the second kill (t=12)
        sample(8, 11.0, 12.5),
        sample(9, 11.5, 72.0, "timeout", 200, "timeout (between_tokens): over 60 s"),  # hung
    ]
    steps = DeploySteps((replacement(0, 8.0, 2), replacement(1, 12.0, 1)), 5.0, 13.0)
    fault = Fault(kind="rolling", stop="kill", gate=False)
    r = rolling_summary(steps, fault, samples, warmup_end=1.0, load_end=16.0, retry_refused=4)
    assert [x.truncated for x in r.replacements] == [2, 2]
    assert (r.truncated, r.in_flight, r.retried, r.failed_steady) == (4, 3, 1, 0)
    f = r.failed
    assert (f.truncated, f.balancer_503, f.bad_gateway, f.draining_503) == (3, 1, 1, 1)
    assert f.stalled == 1 and f.total == 7
    assert r.failed_requests == 6  # request 6's last attempt was answered
    assert (r.steady.requests, r.steady.ok, r.deploy.requests, r.deploy.ok) == (2, 2, 8, 2)
    assert r.deploy.e2e_ms is not None and r.deploy.e2e_ms.max == pytest.approx(1500)  # r8
    assert r.deploy_s == 8.0 and r.completed and r.load_covered  # both of 2 replaced


def test_failure_kinds_follow_what_the_client_saw_through_the_balancer() -> None:
    aborted = sample(0, 1, 2, "http_error", 200, "EngineCore encountered an issue. See stack "
                     "trace (above) for the root cause.")  # vLLM's default shutdown
    stalled = sample(0, 1, 62, "timeout", 200, "timeout (between_tokens): over 60 s")
    assert (failure_kind(aborted), failure_kind(stalled)) == ("aborted", "stalled")
    assert cut(aborted) and cut(stalled) and cut(sample(0, 1, 2, "truncated", error=CUT))
    assert not cut(sample(0, 1, 2, "refused", 503, DRAINING_503)) and not cut(sample(0, 1, 2))
    assert failure_kind(sample(0, 1, 2, "conn_error", None,
                               "ClientConnectorError: Cannot connect to host")) == "refused"
    assert failure_kind(sample(0, 1, 2, "conn_error", None,
                               "ServerDisconnectedError: Server disconnected")) == "reset"
    assert failure_kind(sample(0, 1, 2, "timeout", None, "timeout (total)")) == "other"


def test_the_verdict_names_the_variant_and_its_counts() -> None:
    steps = DeploySteps((replacement(0, 8.0, 4), replacement(1, 12.0, 3)), 5.0, 13.0)
    gated = Fault(kind="rolling", replicas=2)
    r = rolling_summary(steps, gated, [sample(0, 2.0, 3.0), sample(1, 9.0, 10.0)],
                        warmup_end=1.0, load_end=16.0, retry_refused=0)
    assert variant_name(r) == "graceful drain with readiness gating"
    assert sentence(r, "fastapi_batching") == (
        "fastapi_batching, graceful drain with readiness gating: 0 truncated of 7 streams in "
        "flight across 2 replacements; 0 requests failed; TTFT p99 100 ms during the deploy "
        "vs 100 ms before it; deploy 8.0 s.")
    short = rolling_summary(steps, gated, [], warmup_end=1.0, load_end=10.0, retry_refused=0)
    assert sentence(short).endswith("the load ended before the deploy did (raise "
                                    "load.duration_s).")


def test_a_load_ended_by_the_deploy_ends_the_measured_window(tmp_path: Path) -> None:
    point = LoadPoint("c4", "closed", duration_s=4, warmup_s=1, concurrency=4)
    job = job_for(point, client=ClientSettings(probe_interval_s=0), point_start=10.0)
    w = PointWatch(job, tmp_path / "p.jsonl")
    assert w.load_end(Progress(), []) == 15.0
    assert w.load_end(Progress(end_at=13.25), []) == 13.25
    assert Progress(end_at=13.25).ended(13.3) and not Progress().ended(1e9)


def test_the_report_shows_one_row_and_one_sentence_per_variant() -> None:
    from harness.report.production import production_section
    from harness.report.rolling import rolling_section
    from harness.summary.fault import FaultSummary
    from harness.summary.record import Load
    from tests.summaries import typed_point
    from tests.unit.test_production_report import run_of

    steps = DeploySteps((replacement(0, 8.0, 2), replacement(1, 12.0, 1)), 5.0, 13.0)
    cut = [sample(2, 6.0, 9.0, "truncated", error=CUT), sample(4, 8.5, 8.6, "refused", 503,
                                                              HAPROXY_503)]
    kill, gated = Fault(kind="rolling", stop="kill", gate=False), Fault(kind="rolling")
    points = [typed_point(label, "c8", Load("closed", concurrency=8), fault=FaultSummary(
        kind="rolling", completed=1, rolling=rolling_summary(
            steps, fault, [sample(0, 2.0, 3.0), *(cut if fault is kill else [])],
            warmup_end=1.0, load_end=16.0, retry_refused=0)))
        for label, fault in (("a_kill", kill), ("b_gated", gated))]
    html = rolling_section(run_of(points, {}))
    assert html.count("<tr><td>") == 2
    assert ("<td>1 503 from the balancer (a replica refused the connection), 1 truncated</td>"
            in html)
    assert "a_kill, no drain (SIGKILL): 1 truncated of 3 streams in flight" in html
    assert "b_gated, graceful drain with readiness gating: 0 truncated of 3 streams" in html
    assert "r0: 2, 1, 0.05 s, +1.10 s; r1: 1, 0, 0.05 s, +1.10 s" in html  # the kill's row
    assert "rolling deploy behind a load balancer" in production_section(run_of(points, {}))
    assert rolling_section(run_of([], {})) == ""


class Replica(TargetProcess):
    """A started replica as the fleet sees it, without a process: it notes its stop."""

    stopped = False

    def stop(self, timeout_s: float = 30.0) -> int | None:
        self.stopped = True
        return None


def test_a_replica_that_fails_to_start_stops_the_others_and_cuts_their_wait_short(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr("harness.run.rolling.haproxy_binary", lambda: "haproxy")
    first = Replica(label="r0", url="http://127.0.0.1:1", process=None, log_path=tmp_path)
    waited: list[bool] = []

    def spawn(slot: int, cancelled: Callable[[], bool]) -> TargetProcess:
        if slot == 1:
            raise LaunchError("target exited with code 1 before it was ready")
        if slot == 2:  # still loading its model: polls cancelled() as wait_ready does
            deadline = time.monotonic() + 30
            while not cancelled() and time.monotonic() < deadline:
                time.sleep(0.01)
            waited.append(cancelled())
            raise LaunchError("cancelled before it was ready")
        return first

    with pytest.raises(LaunchError, match="exited with code 1"):
        open_fleet("t", Fault(kind="rolling", replicas=3), spawn, tmp_path)
    assert first.stopped and waited == [True]
