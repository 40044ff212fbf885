"""GPU sampler through NVML (the PyPI package `nvidia-ml-py`, imported as `pynvml`).

`GpuSampler.open()` initializes NVML and returns the status record; where NVML is absent (no
driver, no GPU, package missing) it returns `{"available": false, "reason": ...}` and `sample()`
returns nothing: the run records "no GPU", never invented numbers. Each `sample()` reads every
GPU NVML sees and returns one `gpu` record per GPU:

    {"kind": "gpu", "t": 12.3, "gpu": 0, "util_pct": 97, "mem_util_pct": 41,
     "mem_used_mb": 2771.4, "power_w": 312.6, "sm_clock_mhz": 1980, "energy_counter_j": 84211.7}

- `util_pct`: NVML's "percent of time over the past sample period (1/6 s to 1 s, by product)
  during which one or more kernels ran" — busy time, not SM occupancy.
- `mem_used_mb`: device memory in use by every process, MiB. `power_w`: board power draw, W.
- `energy_counter_j`: NVML's total energy counter since the driver loaded (Volta and later), J;
  a cross-check on the energy integrated from `power_w`.
A field the GPU does not support is null, and is not read again.

`nvml` may be passed in (a module-like object) so the reading code is testable without a GPU.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from typing import Any

from harness.samples import Clock
from harness.telemetry.store import Record

MIB = 1024 * 1024


def load_nvml() -> Any:
    """The `pynvml` module of nvidia-ml-py, or None when it is not installed."""
    try:
        return importlib.import_module("pynvml")
    except ImportError:
        return None


class GpuSampler:
    """Reads utilization, memory, power, SM clock and energy of every GPU through NVML."""

    kind = "gpu"

    def __init__(self, clock: Clock, nvml: Any = None) -> None:
        self.clock = clock
        self.nvml = nvml
        self.handles: list[Any] = []
        self.unsupported: set[tuple[int, str]] = set()
        self.initialized = False

    def open(self) -> Record:
        """Initialize NVML; return the `gpu_status` record (available or why not)."""
        nvml = self.nvml if self.nvml is not None else load_nvml()
        if nvml is None:
            return self._unavailable("nvidia-ml-py (pynvml) is not installed")
        self.nvml = nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as exc:
            return self._unavailable(f"NVML could not start: {_error_text(exc)}")
        self.initialized = True
        try:
            count = int(nvml.nvmlDeviceGetCount())
            self.handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            devices = [self._describe(i, h) for i, h in enumerate(self.handles)]
        except nvml.NVMLError as exc:
            self.close()
            return self._unavailable(f"NVML could not list GPUs: {_error_text(exc)}")
        if not self.handles:
            self.close()
            return self._unavailable("NVML sees no GPU")
        return {"kind": "gpu_status", "t": round(self.clock.now(), 6), "available": True,
                "reason": None, "devices": devices}

    def _unavailable(self, reason: str) -> Record:
        self.handles = []
        return {"kind": "gpu_status", "t": round(self.clock.now(), 6), "available": False,
                "reason": reason, "devices": []}

    def _describe(self, index: int, handle: Any) -> Record:
        nvml = self.nvml
        name = nvml.nvmlDeviceGetName(handle)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        limit = self._read(index, "power_limit", nvml.nvmlDeviceGetEnforcedPowerLimit, handle)
        return {"index": index, "name": name.decode() if isinstance(name, bytes) else str(name),
                "mem_total_mb": round(memory.total / MIB, 1),
                "power_limit_w": None if limit is None else round(limit / 1000, 1)}

    def sample(self) -> list[Record]:
        """One `gpu` record per GPU; empty when NVML is not available."""
        nvml = self.nvml
        out: list[Record] = []
        for index, handle in enumerate(self.handles):
            t = self.clock.now()
            util = self._read(index, "util", nvml.nvmlDeviceGetUtilizationRates, handle)
            memory = self._read(index, "memory", nvml.nvmlDeviceGetMemoryInfo, handle)
            power_mw = self._read(index, "power", nvml.nvmlDeviceGetPowerUsage, handle)
            clock_mhz = self._read(index, "sm_clock", nvml.nvmlDeviceGetClockInfo, handle,
                                   nvml.NVML_CLOCK_SM)
            energy_mj = self._read(index, "energy", nvml.nvmlDeviceGetTotalEnergyConsumption,
                                   handle)
            out.append({
                "kind": "gpu", "t": round(t, 6), "gpu": index,
                "util_pct": None if util is None else float(util.gpu),
                "mem_util_pct": None if util is None else float(util.memory),
                "mem_used_mb": None if memory is None else round(memory.used / MIB, 1),
                "power_w": None if power_mw is None else round(power_mw / 1000, 3),
                "sm_clock_mhz": None if clock_mhz is None else float(clock_mhz),
                "energy_counter_j": None if energy_mj is None else round(energy_mj / 1000, 3),
            })
        return out

    def _read(self, index: int, field: str, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)`, or None when this GPU does not support it (then never asked again)."""
        if (index, field) in self.unsupported:
            return None
        try:
            return fn(*args)
        except self.nvml.NVMLError as exc:
            if _is_not_supported(self.nvml, exc):
                self.unsupported.add((index, field))
            return None

    def close(self) -> None:
        if self.initialized:
            self.initialized = False
            self.handles = []
            with contextlib.suppress(self.nvml.NVMLError):
                self.nvml.nvmlShutdown()


def _is_not_supported(nvml: Any, exc: BaseException) -> bool:
    not_supported = getattr(nvml, "NVMLError_NotSupported", None)
    return isinstance(not_supported, type) and isinstance(exc, not_supported)


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
