"""A rolling deploy under load (`[fault] kind = "rolling"`): N replicas of a target behind a real
HAProxy (`harness.run.balancer`), each replaced in turn while the point's load runs.

    fleet = open_fleet("fastapi_batching", fault, spawn, run_folder)   # N replicas + HAProxy
    with fleet:                                    # stopped, every replica with it, always
        deploy = RollingDeploy(fleet, fault, clock, start=lambda: load_start,
                               on_done=lambda end_at: ...)   # the load ends at end_at
        with deploy:
            ...                                    # the load, sent to fleet.url (HAProxy)
        steps = deploy.steps()                     # `harness.metrics.rolling.DeploySteps`

`fault.at_s` after the load began, each replica `r<i>` (i < N) is replaced, one at a time, as a
Kubernetes Deployment with `maxSurge: 1, maxUnavailable: 0` does (with `fault.surge = false`,
steps 2-4 come first and step 1 last: `maxSurge: 0, maxUnavailable: 1`, for a machine with no
room for one more replica):

1. start the new replica (its own process, on its own port, in slot `r<N+i>`) and wait until
   its `/health` answers 200 (the readiness probe), then put it in the balancer's rotation and
   wait until the balancer has it UP;
2. with `fault.gate`, take the old replica out of rotation (HAProxy `drain`: no new request,
   those it serves go on; Kubernetes removes the endpoint). Without it the balancer keeps
   sending it requests until its own health check marks it DOWN (`fall` failed checks, every
   `check_interval_s`: the endpoint removal lag);
3. read how many requests the old replica serves (the balancer's current sessions of it), and
   stop it: `stop = "drain"` sends SIGTERM to its main process (it drains; Kubernetes sends the
   same to a container's PID 1), `stop = "kill"` SIGKILL to its whole process group (a
   container killed);
4. wait for its exit (at most `EXIT_WAIT_S`: past it, SIGKILL, as a grace period ends), then
   for the balancer to mark it DOWN when it was not gated, and remove it (`maint`).

Once the last replacement ended, `on_done(end + fault.after_s)`: the load goes on `after_s`,
then ends. A replica that crashed on its own is found exited at its turn (no signal) and
replaced all the same; a new replica that fails to start stops the deploy (`error`). `cancel()`
(^C, a dead balancer) stops the deploy between two steps and cuts a start short; every process
the deploy started is in `fleet.companions` from the moment it answered, so stopping the fleet
stops it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from harness.metrics.rolling import DeploySteps
from harness.records.typed_json import FLOAT_DIGITS
from harness.run.balancer import Balancer, Checks, haproxy_binary, slot_name
from harness.run.launcher import LaunchError, TargetProcess
from harness.samples import Clock
from harness.scenario.fault import Fault
from harness.summary.rolling import Replacement

TICK_S = 0.02
EXIT_WAIT_S = 90.0  # a drain timeout (30 s by default) plus a model server's own shutdown
Spawn = Callable[[int, Callable[[], bool]], TargetProcess]
"""Start a replica for balancer slot `slot`, ready (`/health` 200); `cancelled()` cuts the wait
short (`LaunchError`)."""


def port(target: TargetProcess) -> int:
    return urllib.parse.urlsplit(target.url).port or 80


@dataclass
class Fleet(TargetProcess):
    """The balancer as the point's target (`url`, `process`: HAProxy), its replicas in
    `companions` (stopped after it) and `servers` (balancer server name → replica in rotation)."""

    balancer: Balancer | None = None
    spawn: Spawn | None = None
    servers: dict[str, TargetProcess] = field(default_factory=dict)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        try:
            return super().stop(timeout_s)
        finally:
            if self.balancer is not None:
                self.balancer.stop()


def open_fleet(label: str, fault: Fault, spawn: Spawn, folder: Path) -> Fleet:
    """`fault.replicas` replicas (started side by side) behind a new HAProxy; `LaunchError`
    when one cannot start. On any failure, or ^C, the starts still waiting are cut short and
    every replica started is stopped."""
    haproxy_binary()  # before minutes of replica starts: one line naming the package
    cancel = threading.Event()
    pool = ThreadPoolExecutor(max_workers=fault.replicas)
    futures = [pool.submit(spawn, slot, cancel.is_set) for slot in range(fault.replicas)]
    try:
        started = [f.result() for f in futures]
        balancer = Balancer.start([port(r) for r in started], 2 * fault.replicas, folder,
                                  label, Checks(fault.check_interval_s, fault.fall))
    except BaseException:
        cancel.set()
        pool.shutdown(wait=True)
        for f in futures:
            if f.exception() is None:
                f.result().stop(timeout_s=5)
        raise
    pool.shutdown()
    lb = balancer.process
    return Fleet(label=label, url=lb.url, process=lb.process, log_path=lb.log_path,
                 startup_s=max(r.startup_s for r in started) + lb.startup_s,
                 balancer=balancer, spawn=spawn, companions=list(started),
                 servers={slot_name(i): r for i, r in enumerate(started)})


def _t(t: float | None) -> float | None:
    return None if t is None else round(t, FLOAT_DIGITS)


class RollingDeploy:
    """Context manager: the deploy (module docstring) in a thread, `at_s` after `start()`."""

    def __init__(self, fleet: Fleet, fault: Fault, clock: Clock, start: Callable[[], float],
                 on_done: Callable[[float], None]) -> None:
        assert fleet.balancer is not None and fleet.spawn is not None, "open_fleet makes it"
        self.fleet, self.balancer, self.spawn = fleet, fleet.balancer, fleet.spawn
        self.fault, self.clock, self.start, self.on_done = fault, clock, start, on_done
        self.replacements: list[Replacement] = []
        self.start_at: float | None = None
        self.end_at: float | None = None
        self.error: str | None = None
        self.cancelled = threading.Event()
        self.thread = threading.Thread(target=self._run, name="patternbench-rolling",
                                       daemon=True)

    @classmethod
    def of(cls, fault: Fault | None, target: TargetProcess, clock: Clock,
           start: Callable[[], float], on_done: Callable[[float], None]) -> RollingDeploy | None:
        """The deploy for a rolling `fault` (None for no fault or another kind)."""
        if fault is None or fault.kind != "rolling" or not isinstance(target, Fleet):
            return None
        return cls(target, fault, clock, start, on_done)

    @property
    def began(self) -> bool:
        return self.start_at is not None

    def cancel(self) -> None:
        """Stop the deploy at its next step (a replica starting is stopped)."""
        self.cancelled.set()

    def steps(self) -> DeploySteps:
        return DeploySteps(tuple(self.replacements), self.start_at, self.end_at, self.error)

    def __enter__(self) -> RollingDeploy:
        self.thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if et is not None:
            self.cancel()
        self.thread.join()  # after a normal load, the deploy runs to its end

    def _run(self) -> None:
        while self.clock.now() < self.start() + self.fault.at_s:
            if self.cancelled.wait(TICK_S):
                return
        self.start_at = self.clock.now()
        for i in range(self.fault.replicas):
            step = Step(self, i)
            try:
                record = step.run()
            except Exception as exc:  # a replica did not start, the balancer
                record = step.record(error=_line(exc))  # went away: the record says why
            self.replacements.append(record)
            if record.error is not None:
                self.error = f"replacement {i}: {record.error}"
                break
        self.end_at = self.clock.now()
        if not self.cancelled.is_set():
            self.on_done(self.end_at + self.fault.after_s)


class Step:
    """One replacement (module docstring, steps 1-4); `record()` what it did so far."""

    def __init__(self, deploy: RollingDeploy, index: int) -> None:
        self.deploy, self.index = deploy, index
        self.fault, self.balancer, self.clock = deploy.fault, deploy.balancer, deploy.clock
        self.old_name = slot_name(index)
        self.new_name = slot_name(deploy.fault.replicas + index)
        self.old = deploy.fleet.servers[self.old_name]
        self.new: TargetProcess | None = None
        self.at: dict[str, float] = {"started": self.clock.now()}
        self.signal: str | None = None
        self.exit_code: int | None = None
        self.in_flight: int | None = None

    def record(self, error: str | None = None) -> Replacement:
        at = self.at.get
        sent, end = at("signal"), at("exit")
        drain = end - sent if sent is not None and end is not None else None
        return Replacement(
            index=self.index, old=self.old_name, new=self.new_name if self.new else None,
            old_pid=self.old.pid, new_pid=self.new.pid if self.new else None,
            started_at_s=round(self.at["started"], FLOAT_DIGITS), ready_at_s=_t(at("ready")),
            up_at_s=_t(at("up")), out_of_rotation_at_s=_t(at("out")), signal=self.signal,
            signal_at_s=_t(at("signal")), exit_at_s=_t(at("exit")), exit_code=self.exit_code,
            drain_s=_t(drain), in_flight_at_signal=self.in_flight, error=error)

    def cancelled(self) -> bool:
        return self.deploy.cancelled.is_set()

    def run(self) -> Replacement:
        """New replica first (`fault.surge`), or the old one retired first."""
        if not self.fault.surge:
            self._retire_old()
        error = self._start_new()
        if error is not None:
            return self.record(error=error)
        if self.fault.surge:
            self._retire_old()
        return self.record(error=self._why_not(None))

    def _start_new(self) -> str | None:
        """Step 1: the new replica started, ready and UP in the balancer; else why not."""
        fleet, balancer = self.deploy.fleet, self.balancer
        self.at["started"] = self.clock.now()
        new = self.new = self.deploy.spawn(self.fault.replicas + self.index, self.cancelled)
        fleet.companions.append(new)  # stopped with the fleet from now on
        self.at["ready"] = self.clock.now()
        balancer.enable(self.fault.replicas + self.index, port(new))
        if balancer.wait_status(self.new_name, lambda s: s == "UP", self._check_s(),
                                self.cancelled) is None:
            return self._why_not("the balancer never had the new replica UP")
        self.at["up"] = self.clock.now()
        fleet.servers[self.new_name] = new
        return None

    def _check_s(self) -> float:
        """How long the balancer's checks may take to see a change: `fall` + 2 periods, + 5 s."""
        return (self.fault.fall + 2) * self.fault.check_interval_s + 5

    def _retire_old(self) -> None:
        """Steps 2-4: out of rotation (gate), signalled, exited, DOWN, removed."""
        fleet, balancer = self.deploy.fleet, self.balancer
        if self.fault.gate:
            balancer.drain(self.old_name)
            self.at["out"] = self.clock.now()
        self._stop_old()
        if (not self.fault.gate and "out" not in self.at  # the balancer's check must see it
                and balancer.wait_status(self.old_name, _down, self._check_s(),
                                         self.cancelled)):
            self.at["out"] = self.clock.now()
        balancer.maint(self.old_name)
        self.old.stop(timeout_s=5)  # what is left of its process group
        fleet.companions.remove(self.old)
        del fleet.servers[self.old_name]

    def _why_not(self, error: str | None) -> str | None:
        return "stopped: the load was interrupted or its target died" if self.cancelled() \
            else error

    def _stop_old(self) -> None:
        """Steps 3-4: count its requests, signal it, wait for its exit (noting when the
        balancer marks it DOWN meanwhile)."""
        proc = self.old.process
        assert proc is not None, "replicas are processes of ours"
        self.in_flight = self.balancer.server(self.old_name).sessions
        if proc.poll() is None:
            if self.fault.stop == "kill":
                self.signal = "SIGKILL"
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            else:
                self.signal = "SIGTERM"
                proc.send_signal(signal.SIGTERM)
            self.at["signal"] = self.clock.now()
        deadline = self.clock.now() + EXIT_WAIT_S
        while proc.poll() is None and not self.cancelled():
            if "out" not in self.at and _down(self.balancer.server(self.old_name).status):
                self.at["out"] = self.clock.now()
            if self.clock.now() > deadline:  # the grace period is over
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            self.deploy.cancelled.wait(TICK_S)
        if proc.poll() is not None:
            self.exit_code = proc.returncode
            if self.signal is not None:  # else it had exited before its turn: when is unknown
                self.at["exit"] = self.clock.now()


def _line(exc: Exception) -> str:
    """An exception in one line: a launch error's first line (its log tail follows)."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return first if isinstance(exc, LaunchError) else f"{type(exc).__name__}: {first}"


def _down(status: str) -> bool:
    return status in ("DOWN", "MAINT")
