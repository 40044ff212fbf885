"""Scrape a target's `GET /metrics` (Prometheus text) about once a second.

Our targets export `patternbench_in_flight`, `patternbench_queue_depth` and
`patternbench_batch_size` (and a proxy its pool gauges); vLLM exports `vllm:num_requests_running`,
`vllm:num_requests_waiting` and its KV-cache usage (`vllm:kv_cache_usage_perc`, older releases
`vllm:gpu_cache_usage_perc`, a 0–1 fraction); the prefix cache's prompt tokens looked up and
served (cumulative) as `patternbench_prefix_cache_queries` / `_hits`, vLLM's counters
`vllm:prefix_cache_queries` / `vllm:prefix_cache_hits`. All map onto one `metrics` record:

    {"kind": "metrics", "t": 13.0, "source": "patternbench", "in_flight": 32, "queue_depth": 0,
     "batch_size": 32, "kv_cache_pct": null, "prefix_cache_queries": 8192,
     "prefix_cache_hits": 6144, "status": 200, "error": null}

For vLLM, `batch_size` is its running requests, `queue_depth` its waiting ones and `in_flight`
their sum; for llama.cpp's llama-server (`source` "llamacpp") the same from
`llamacpp:requests_processing` (busy slots) and `llamacpp:requests_deferred` (waiting for one).
A gauge exported with several label sets (vLLM's engines) is summed, the KV-cache usage is their
maximum. A field the target does not export is null; a failed scrape has
`error` set and every field null. `source` is null when no known gauge was found.
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

from harness.samples import Clock
from harness.telemetry.store import Record
from harness.telemetry.target_http import Endpoint

SCRAPE_TIMEOUT_S = 5.0
OURS = {
    "patternbench_in_flight": "in_flight",
    "patternbench_queue_depth": "queue_depth",
    "patternbench_batch_size": "batch_size",
    "patternbench_proxy_pool_in_use": "pool_in_use",
    "patternbench_proxy_pool_waiting": "pool_waiting",
    "patternbench_prefix_cache_queries": "prefix_cache_queries",
    "patternbench_prefix_cache_hits": "prefix_cache_hits",
}
VLLM_RUNNING = "vllm:num_requests_running"
VLLM_WAITING = "vllm:num_requests_waiting"
VLLM_KV_CACHE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")
VLLM_PREFIX = {"vllm:prefix_cache_queries_total": "prefix_cache_queries",  # counters, tokens
               "vllm:prefix_cache_hits_total": "prefix_cache_hits"}
LLAMACPP_RUNNING = "llamacpp:requests_processing"
LLAMACPP_WAITING = "llamacpp:requests_deferred"
KEPT = frozenset({*OURS, VLLM_RUNNING, VLLM_WAITING, *VLLM_KV_CACHE, *VLLM_PREFIX,
                  LLAMACPP_RUNNING, LLAMACPP_WAITING})
FIELDS = ("in_flight", "queue_depth", "batch_size", "kv_cache_pct", "prefix_cache_queries",
          "prefix_cache_hits")


def parse_metrics(text: str, kept: frozenset[str] = KEPT) -> dict[str, float]:
    """The samples named in `kept` (default: the gauges the `metrics` record maps), by sample
    name; a name with several label sets is summed (KV-cache usage: the maximum). Raises
    ValueError on text that is not Prometheus format."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name not in kept:
                continue
            value = float(sample.value)
            if sample.name in out:
                value = (max(out[sample.name], value) if sample.name in VLLM_KV_CACHE
                         else out[sample.name] + value)
            out[sample.name] = value
    return out


def server_fields(values: Mapping[str, float]) -> Record:
    """Map parsed gauges onto the `metrics` record's fields (see the module docstring)."""
    fields: Record = dict.fromkeys(FIELDS)
    fields["source"] = None
    ours = {field: values[name] for name, field in OURS.items() if name in values}
    if ours:
        fields["source"] = "patternbench"
        fields |= ours
        return fields
    running, waiting = values.get(VLLM_RUNNING), values.get(VLLM_WAITING)
    kv = next((values[name] for name in VLLM_KV_CACHE if name in values), None)
    if running is None and waiting is None and kv is None:
        return _llamacpp_fields(values, fields)
    fields["source"] = "vllm"
    fields["batch_size"] = running
    fields["queue_depth"] = waiting
    if running is not None and waiting is not None:
        fields["in_flight"] = running + waiting
    fields["kv_cache_pct"] = None if kv is None else round(kv * 100, 3)
    fields |= {field: values[name] for name, field in VLLM_PREFIX.items() if name in values}
    return fields


def _llamacpp_fields(values: Mapping[str, float], fields: Record) -> Record:
    """llama-server's busy slots and deferred requests, when exported."""
    running, waiting = values.get(LLAMACPP_RUNNING), values.get(LLAMACPP_WAITING)
    if running is None and waiting is None:
        return fields
    fields["source"] = "llamacpp"
    fields["batch_size"] = running
    fields["queue_depth"] = waiting
    if running is not None and waiting is not None:
        fields["in_flight"] = running + waiting
    return fields


class MetricsScraper:
    """Fetches and parses `base_url + path` once per `sample()`, on a fresh connection."""

    kind = "metrics"

    def __init__(self, clock: Clock, base_url: str, path: str = "/metrics",
                 timeout_s: float = SCRAPE_TIMEOUT_S,
                 headers: Mapping[str, str] | None = None) -> None:
        self.clock = clock
        self.endpoint = Endpoint(base_url, path, timeout_s, headers=headers)

    def sample(self) -> list[Record]:
        record: Record = {"kind": "metrics", "t": round(self.clock.now(), 6)}
        record |= server_fields({})
        record |= {"status": None, "error": None}
        try:
            status, body = self.endpoint.get()
            record["status"] = status
            if status != 200:
                record["error"] = f"HTTP {status}"
                return [record]
            record |= server_fields(parse_metrics(body.decode("utf-8", errors="replace")))
        except TimeoutError:
            record["error"] = f"no answer within {self.endpoint.timeout_s:g} s"
        except (OSError, http.client.HTTPException, ValueError) as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
        return [record]
