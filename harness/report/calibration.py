"""The harness's own overhead, from `patternbench calibrate` (`Manifest.calibration`).

Each driver was run against the zero-work `echo` target; its highest sustained request rate and
TTFT floor bound what this run's numbers can mean: a target measured near a driver's floor is
measured partly on the driver.
"""

from __future__ import annotations

from harness.report.formatting import esc, fmt_ms, fmt_rate
from harness.report.run_data import RunData
from harness.run.calibration import LoadAverage


def calibration_section(run: RunData) -> str:
    """A small table per driver, or '' when the run carries no calibration."""
    cal = run.manifest.calibration if run.manifest else None
    if cal is None or not cal.drivers:
        return ""
    rows = []
    for name, f in cal.drivers.items():
        timing = "first byte (no token timing)" if f.timing == "first_byte" else "token"
        rows.append(f"<tr><td>{esc(name)}</td><td>{fmt_rate(f.max_req_s)}</td>"
                    f"<td>{fmt_ms(f.ttft_p50_ms)}</td><td>{fmt_ms(f.ttft_p99_ms)}"
                    f"</td><td>{fmt_ms(f.driver_cpu_ms_per_req)}</td>"
                    f"<td>{fmt_rate(f.req_s_per_core)}</td><td>{esc(timing)}</td></tr>")
    return ("<h2 id='calibration'>Harness overhead</h2>"
            f"<p class='muted'>From <code>patternbench calibrate</code> ({esc(cal.created)}"
            f", run {esc(cal.run)}): each driver against the zero-work echo target at "
            f"{esc(cal.concurrency)} concurrent streams of "
            f"{esc(cal.tokens_per_request)} tokens{_load(cal.load_avg_1m)}. Figures near these "
            "are the harness's, not the target's.</p>"
            "<table><thead><tr><th>driver</th><th>max req/s</th><th>TTFT floor p50 ms</th>"
            "<th>TTFT floor p99 ms</th><th>driver CPU ms/req</th><th>req/s per core</th>"
            "<th>timing</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _load(load: LoadAverage) -> str:
    return (f" (machine load average {esc(load.before)} → {esc(load.after)}; "
            "other work lowers max req/s, not CPU ms per request)")
