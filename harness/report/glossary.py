"""The metric glossary: each patternbench metric, its definition, and what other tools call it.

Names are the result keys each tool writes: `vllm bench serve` (its --save-result JSON and
console lines), GuideLLM (benchmark report metrics) and AIPerf (metric tags). "—" means the tool
has no such metric; a note says where a same-named metric means something else.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.report.formatting import esc


@dataclass(frozen=True)
class Term:
    name: str
    key: str  # the key in summary.json points
    definition: str
    vllm: str
    guidellm: str
    aiperf: str


GLOSSARY: tuple[Term, ...] = (
    Term("TTFT (from sent)", "ttft_ms",
         "Time from sending the request to receiving the first generated token (service time).",
         "mean_ttft_ms, median_ttft_ms, p99_ttft_ms", "time_to_first_token_ms",
         "time_to_first_token"),
    Term("TTFT (from scheduled)", "ttft_sched_ms",
         "Time from when the request was due (its scheduled arrival) to the first token: "
         "client-side queueing included, so no coordinated omission.",
         "—", "— (only E2E has a scheduled form: request_scheduled_latency)", "—"),
    Term("TTFB", "ttfb_ms",
         "Time from sending to the first response byte; for drivers that cannot see tokens "
         "(k6) it stands in for TTFT.",
         "—", "—", "http_req_waiting (its HTTP trace metric, shown with --show-trace-timing: "
         "from the request fully sent to the first response byte)"),
    Term("TPOT", "tpot_ms",
         "Per request, (E2E − TTFT) / (output tokens − 1): mean time per token after the first; "
         "requests with one token have none.",
         "mean_tpot_ms, median_tpot_ms, p99_tpot_ms",
         "inter_token_latency_ms (its time_per_output_token_ms includes the first token)",
         "inter_token_latency"),
    Term("ITL", "itl_ms",
         "Every gap between consecutive token arrivals, pooled across all requests of the "
         "window into one distribution (not a per-request average: a stall shows in the tail, "
         "and long requests weigh more).",
         "mean_itl_ms, median_itl_ms, p99_itl_ms",
         "— (its ITL is the per-request average, i.e. TPOT)",
         "inter_chunk_latency (per SSE chunk; its ITL is TPOT)"),
    Term("E2E latency", "e2e_ms",
         "Time from sending the request to its last byte. e2e_sched_ms counts from the "
         "scheduled time instead.",
         "mean_e2el_ms, median_e2el_ms, p99_e2el_ms",
         "request_latency (seconds); scheduled: request_scheduled_latency", "request_latency"),
    Term("Request throughput", "throughput.req_s",
         "Successful requests completed per second over the measured window (warm-up "
         "excluded).",
         "request_throughput", "requests_per_second", "request_throughput"),
    Term("Output token throughput", "throughput.output_tok_s",
         "Output tokens of successful requests per second over the measured window.",
         "output_throughput", "output_tokens_per_second", "output_token_throughput"),
    Term("Goodput", "goodput",
         "Requests per second that succeeded and met every SLO of the scenario "
         "(e.g. TTFT ≤ 500 ms), with the fraction of all requests that did.",
         "request_goodput (with --goodput)", "request_goodput", "goodput"),
    Term("Achieved concurrency", "achieved_concurrency",
         "Mean number of requests in flight over the window: total time in service ÷ window "
         "(Little's law). Below the set concurrency when the client cannot keep up.",
         "— (max_concurrent_requests is the peak, not the mean)", "request_concurrency",
         "—"),
    Term("Dropped", "dropped",
         "Arrivals of the schedule the driver never sent (k6's dropped iterations, locust "
         "arrivals no user took): counted with the failures, never silently lost.",
         "—", "—", "—"),
    Term("/health probe", "probe",
         "GET /health from its own process during the load: its latency shows a stalled event "
         "loop. A probe with no answer within the timeout counts at the timeout (censored); "
         "missed_ticks counts the probe periods skipped while one waited.",
         "—", "—", "—"),
    Term("Dispatch lag", "dispatch_lag_ms",
         "Time from when a request was scheduled to when the driver actually sent it. Large "
         "values mean the load generator, not the target, was the bottleneck.",
         "—", "request_dispatch_delay (seconds)",
         "— (credit_drop_latency is only the worker's internal hand-off)"),
    Term("GPU utilization", "telemetry.gpu.util_pct",
         "NVML's utilization per GPU, ~10 Hz over the measured window: the share of each "
         "sample period in which a kernel ran (busy time, not SM occupancy).",
         "—", "—", "DCGM_FI_DEV_GPU_UTIL (from a DCGM exporter, --gpu-telemetry)"),
    Term("Energy, tokens per joule", "telemetry.gpu.energy_j, tokens_per_j",
         "Board power integrated over the measured window, summed over GPUs; output tokens "
         "that arrived in the window divided by it.",
         "—", "—", "DCGM_FI_DEV_POWER_USAGE is sampled; no per-token energy"),
    Term("Target CPU % and RSS", "telemetry.target.cpu_pct, rss_peak_mb",
         "CPU time of the target's whole process tree per second (100 = one core) and its "
         "peak resident memory, from psutil at 2 Hz; telemetry.driver is the same for the "
         "load generator.",
         "—", "—", "—"),
    Term("Server queue and batch", "telemetry.server",
         "Peaks of the target's own gauges scraped from /metrics about once a second: in "
         "flight, queue depth, running batch size (vLLM: running and waiting requests).",
         "— (vLLM's server exports vllm:num_requests_running / _waiting)", "—", "—"),
)


def glossary_html() -> str:
    """The glossary as an HTML table (every string escaped)."""
    rows = "".join(
        f"<tr><th scope='row'>{esc(t.name)}<div class='key'><code>{esc(t.key)}</code></div>"
        f"</th><td>{esc(t.definition)}</td><td><code>{esc(t.vllm)}</code></td>"
        f"<td><code>{esc(t.guidellm)}</code></td><td><code>{esc(t.aiperf)}</code></td></tr>"
        for t in GLOSSARY
    )
    return (
        "<div class='scroll'><table class='glossary'><thead><tr><th>metric</th>"
        "<th>definition</th><th>vLLM <code>bench serve</code></th><th>GuideLLM</th>"
        f"<th>AIPerf</th></tr></thead><tbody>{rows}</tbody></table></div>"
        "<p class='muted'>Percentile columns (p50, p99) are linear-interpolated over requests; "
        "latencies are in milliseconds, measured on one monotonic clock. A percentile drawn "
        "from fewer values than its floor (the distribution's <code>too_few</code>) is shown "
        "greyed, its tooltip says why: read it as little more than the maximum.</p>"
    )
