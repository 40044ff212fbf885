"""Telemetry: what the machine and the target were doing while each load point ran.

Four samplers, on the samples' clock (`harness.samples.Clock`: seconds since the run's origin),
run in a collector process around every load point (`TelemetryRecorder`):

| sampler | module | rate | record `kind` |
|---|---|---|---|
| GPU through NVML: utilization, memory, power, SM clock, energy per GPU | `gpu` | ~10 Hz | `gpu` |
| CPU % and RSS/PSS of the target's process tree and of the driver's | `host` | 2 Hz | `host` |
| `GET /health` latency | `health` | ~1 Hz | `health` |
| `GET /metrics`: in-flight, queue depth, batch size (ours, vLLM's) | `scrape` | ~1 Hz | `metrics` |

plus `gpu_status` (once per point: NVML available, or why not), `point` (the point's span) and
`error` (a sampler that failed). Each record's fields are documented in its module. The runner
stores them in `results/<run>/telemetry/<target>.jsonl` (`store`) and puts the pure summary of
each point's measured window (`summary`) under `telemetry` in its summary.json entry.

Where there is no GPU (or no NVML), the point says `"gpu": {"available": false, "reason": ...}`:
nothing is invented.
"""
