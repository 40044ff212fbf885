"""Samplers against real processes (host) and real NVML absence; NVML's reading code with a
stand-in module, since no GPU is here."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.samples import Clock
from harness.telemetry.collector import Rates, collect
from harness.telemetry.gpu import GpuSampler
from harness.telemetry.host import HostSampler
from harness.telemetry.store import Record, read_records, write_records
from harness.telemetry.summary import summarize_telemetry
from tests.waiting import wait_for

BOUND_S = 60  # every spawned process ends by itself after this, whatever the test does

# A child that spins until stdin closes (or BOUND_S), printing "ready" first; CHILD also holds
# ~200 MiB resident, touched before "ready". PARENT starts one child and waits for it.
SPINNER = f"""
import sys, threading, time
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
print("ready", flush=True)
end = time.monotonic() + {BOUND_S}
while not stop.is_set() and time.monotonic() < end:
    pass
"""
CHILD = "data = bytes(range(256)) * (200 * 1024 * 4)\n" + SPINNER
PARENT = """
import subprocess, sys
sys.exit(subprocess.call([sys.executable, "-c", sys.argv[1]]))
"""


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def end(proc: subprocess.Popen[str]) -> None:
    if proc.stdin is not None:
        proc.stdin.close()  # the child's stdin is inherited: both end
    try:
        proc.wait(timeout=BOUND_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture()
def target_tree() -> Iterator[subprocess.Popen[str]]:
    proc = spawn(PARENT, CHILD)
    try:
        yield proc
    finally:
        end(proc)


@pytest.fixture()
def driver_proc() -> Iterator[subprocess.Popen[str]]:
    proc = spawn(SPINNER)
    try:
        yield proc
    finally:
        end(proc)


def run_collector(clock: Clock, until: Callable[[list[Record]], bool], what: str,
                  **kwargs: Any) -> list[Record]:
    """Run `collect` in a thread until `until(records)` holds (`what` it waits for); return the
    records."""
    records: list[Record] = []
    stop = threading.Event()
    thread = threading.Thread(target=collect, args=(clock, records.append, stop), kwargs=kwargs)
    thread.start()
    try:
        wait_for(lambda: until(list(records)), 30, 0.05, what)
    finally:
        stop.set()
        thread.join(timeout=30)
    return records


def test_host_sampler_measures_the_target_tree_and_the_driver_apart(
        target_tree: subprocess.Popen[str], driver_proc: subprocess.Popen[str]) -> None:
    clock = Clock()
    sampler = HostSampler(clock, lambda: [target_tree.pid], driver_proc.pid)
    host: list[Record] = []

    def enough() -> bool:
        host.extend(sampler.sample())
        return sum(1 for r in host if r["target_cpu_pct"] is not None) >= 4

    wait_for(enough, 30, 0.05, "4 host samples with a target CPU reading")
    summary = summarize_telemetry(host, start=0.0, end=clock.now())
    target, driver = summary.target, summary.driver
    assert target.procs_max == 2  # the parent and its child
    assert target.rss_peak_mb is not None and target.rss_peak_mb > 150  # the child's ~200 MiB
    assert target.pss_peak_mb is not None and target.pss_peak_mb > 150
    assert target.cpu_pct is not None and target.cpu_pct.max > 20  # a spinning child
    assert driver.procs_max == 1
    assert driver.cpu_pct is not None and driver.cpu_pct.max > 20
    assert driver.rss_peak_mb is not None and driver.rss_peak_mb < 100  # the target's not counted


def test_driver_tree_leaves_out_target_processes_and_excluded_ones(
        target_tree: subprocess.Popen[str]) -> None:
    import os

    import psutil

    clock = Clock()
    # This test process is the driver root; the target tree is its child and must not count.
    sampler = HostSampler(clock, lambda: [target_tree.pid], os.getpid())
    (record,) = sampler.sample()
    children = {p.pid for p in psutil.Process().children(recursive=True)}
    assert target_tree.pid in children
    assert record["driver_procs"] == 1 + len(children) - 2  # minus the parent and its child
    assert record["target_procs"] == 2
    excluded = HostSampler(clock, lambda: [target_tree.pid], os.getpid(), exclude=[os.getpid()])
    (record,) = excluded.sample()
    assert record["driver_procs"] == len(children) - 2


def test_a_target_that_is_gone_has_no_processes_and_null_memory() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    (record,) = HostSampler(Clock(), lambda: [proc.pid], None).sample()
    assert record["target_procs"] == 0 and record["target_rss_mb"] is None
    assert record["driver_procs"] == 0


def test_collector_without_nvml_records_no_gpu_and_keeps_sampling(
        target_tree: subprocess.Popen[str], tmp_path: Path) -> None:
    status = GpuSampler(Clock()).open()
    if status["available"]:
        pytest.skip("NVML works on this machine; this test is about its absence")
    assert "NVML" in status["reason"] or "nvidia-ml-py" in status["reason"]
    clock = Clock()
    records = run_collector(
        clock, lambda rs: sum(r["kind"] == "host" for r in rs) >= 3, "3 host records", url=None,
        target_pids=[target_tree.pid], driver_pid=None, rates=Rates(host_s=0.1))
    assert records[0]["kind"] == "gpu_status" and records[0]["available"] is False
    assert not [r for r in records if r["kind"] == "gpu"]
    write_records(tmp_path / "t.jsonl", records)
    stored = read_records(tmp_path / "t.jsonl")
    assert stored == records
    summary = summarize_telemetry(stored, start=0.0, end=clock.now(), output_tokens=10)
    assert (summary.gpu.available, summary.gpu.reason) == (False, records[0]["reason"])
    assert summary.target.rss_peak_mb is not None and summary.target.rss_peak_mb > 150


class FakeNVMLError(Exception):
    pass


class FakeNotSupported(FakeNVMLError):
    pass


class FakeNVML:
    """Stands in for `pynvml` (no GPU here): the calls and units of nvidia-ml-py, set values."""

    NVMLError = FakeNVMLError
    NVMLError_NotSupported = FakeNotSupported
    NVML_CLOCK_SM = 1

    def __init__(self, gpus: int = 2, power: bool = True) -> None:
        self.gpus, self.power = gpus, power
        self.calls: dict[str, int] = {}
        self.shutdown = 0

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def nvmlInit(self) -> None:
        self._count("init")

    def nvmlShutdown(self) -> None:
        self.shutdown += 1

    def nvmlDeviceGetCount(self) -> int:
        return self.gpus

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetName(self, h: int) -> bytes:
        return f"Fake GPU {h}".encode()

    def nvmlDeviceGetMemoryInfo(self, h: int) -> SimpleNamespace:
        return SimpleNamespace(total=80 * 1024**3, used=(h + 1) * 512 * 1024**2)

    def nvmlDeviceGetEnforcedPowerLimit(self, h: int) -> int:
        return 700_000

    def nvmlDeviceGetUtilizationRates(self, h: int) -> SimpleNamespace:
        return SimpleNamespace(gpu=90 - 40 * h, memory=30)

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        self._count("power")
        if not self.power:
            raise FakeNotSupported("not supported")
        return 250_500 + h * 1000  # mW

    def nvmlDeviceGetClockInfo(self, h: int, clock: int) -> int:
        assert clock == self.NVML_CLOCK_SM
        return 1980

    def nvmlDeviceGetTotalEnergyConsumption(self, h: int) -> int:
        return 123_456_789  # mJ


def test_gpu_sampler_reads_every_gpu_in_stated_units() -> None:
    nvml = FakeNVML()
    sampler = GpuSampler(Clock(), nvml)
    status = sampler.open()
    assert status["available"] is True
    assert status["devices"][1] == {"index": 1, "name": "Fake GPU 1", "mem_total_mb": 81920.0,
                                    "power_limit_w": 700.0}
    first, second = sampler.sample()
    assert (first["gpu"], first["util_pct"], first["mem_used_mb"]) == (0, 90.0, 512.0)
    assert (second["gpu"], second["util_pct"], second["mem_used_mb"]) == (1, 50.0, 1024.0)
    assert first["power_w"] == 250.5 and second["power_w"] == 251.5
    assert first["sm_clock_mhz"] == 1980.0 and first["energy_counter_j"] == 123456.789
    sampler.close()
    assert nvml.shutdown == 1


def test_gpu_without_power_reading_gives_null_power_and_stops_asking() -> None:
    nvml = FakeNVML(gpus=1, power=False)
    sampler = GpuSampler(Clock(), nvml)
    sampler.open()
    for _ in range(3):
        (record,) = sampler.sample()
        assert record["power_w"] is None and record["util_pct"] == 90.0
    assert nvml.calls["power"] == 1


def test_nvml_that_fails_to_start_or_sees_no_gpu_is_unavailable() -> None:
    class Broken(FakeNVML):
        def nvmlInit(self) -> None:
            raise FakeNVMLError("Driver Not Loaded")

    status = GpuSampler(Clock(), Broken()).open()
    assert status["available"] is False and "Driver Not Loaded" in status["reason"]
    empty = FakeNVML(gpus=0)
    sampler = GpuSampler(Clock(), empty)
    assert sampler.open()["reason"] == "NVML sees no GPU"
    assert sampler.sample() == [] and empty.shutdown == 1


class _SteppedClock(Clock):
    """A run clock that reads what the test sets."""

    def __init__(self) -> None:
        super().__init__()
        self.t = 0.0

    def now(self) -> float:
        return self.t


def test_pss_is_read_again_only_every_pss_every_s(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import psutil

    from harness.telemetry import host

    reads: list[int] = []

    def counting(proc: psutil.Process) -> int | None:
        reads.append(proc.pid)
        return (len(reads) + 1) * 100 * host.MIB

    monkeypatch.setattr(host, "_full_memory", counting)
    clock = _SteppedClock()
    meter = host.TreeMeter(clock)
    me = [psutil.Process(os.getpid())]
    first = meter.measure(me, "driver")
    clock.t = host.PSS_EVERY_S / 2
    between = meter.measure(me, "driver")  # the last PSS read, not a new one
    clock.t = host.PSS_EVERY_S
    later = meter.measure(me, "driver")
    assert len(reads) == 2
    assert between["driver_pss_mb"] == first["driver_pss_mb"]
    assert later["driver_pss_mb"] != first["driver_pss_mb"]
    assert between["driver_rss_mb"] is not None  # RSS is read at every sample
