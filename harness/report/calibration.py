"""The harness's own overhead, from `patternbench calibrate` (`manifest["calibration"]`).

Each driver was run against the zero-work `echo` target; its highest sustained request rate and
TTFT floor bound what this run's numbers can mean: a target measured near a driver's floor is
measured partly on the driver.
"""

from __future__ import annotations

from harness.report.formatting import esc, fmt_ms, fmt_rate
from harness.report.run_data import RunData, as_dict


def calibration_section(run: RunData) -> str:
    """A small table per driver, or '' when the run carries no calibration."""
    cal = as_dict(run.manifest.get("calibration"))
    drivers = as_dict(cal.get("drivers"))
    if not drivers:
        return ""
    rows = []
    for name, raw in drivers.items():
        f = as_dict(raw)
        timing = "first byte (no token timing)" if f.get("timing") == "first_byte" else "token"
        rows.append(f"<tr><td>{esc(name)}</td><td>{fmt_rate(f.get('max_req_s'))}</td>"
                    f"<td>{fmt_ms(f.get('ttft_p50_ms'))}</td><td>{fmt_ms(f.get('ttft_p99_ms'))}"
                    f"</td><td>{fmt_ms(f.get('driver_cpu_ms_per_req'))}</td>"
                    f"<td>{fmt_rate(f.get('req_s_per_core'))}</td><td>{esc(timing)}</td></tr>")
    return ("<h2 id='calibration'>Harness overhead</h2>"
            f"<p class='muted'>From <code>patternbench calibrate</code> ({esc(cal.get('created'))}"
            f", run {esc(cal.get('run'))}): each driver against the zero-work echo target at "
            f"{esc(cal.get('concurrency'))} concurrent streams of "
            f"{esc(cal.get('tokens_per_request'))} tokens{_load(cal)}. Figures near these are "
            "the harness's, not the target's.</p>"
            "<table><thead><tr><th>driver</th><th>max req/s</th><th>TTFT floor p50 ms</th>"
            "<th>TTFT floor p99 ms</th><th>driver CPU ms/req</th><th>req/s per core</th>"
            "<th>timing</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _load(cal: dict[str, object]) -> str:
    load = as_dict(cal.get("load_avg_1m"))
    if not load:
        return ""
    return (f" (machine load average {esc(load.get('before'))} → {esc(load.get('after'))}; "
            "other work lowers max req/s, not CPU ms per request)")
