"""Parsing `/metrics`: our targets' gauges, vLLM's and llama.cpp's, and the HTTP samplers on a real
server."""

from __future__ import annotations

from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from harness.samples import Clock
from harness.telemetry.health import HealthSeries
from harness.telemetry.scrape import MetricsScraper, parse_metrics, server_fields
from targets.server.stats import Stats
from tests.http_server import serving

# The shape vLLM's OpenAI server exports (gauges with model/engine labels, a counter around
# them); written for this test, values chosen so each mapping is visible.
VLLM_TEXT = """\
# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="tiny"} 5.0
vllm:num_requests_running{engine="1",model_name="tiny"} 3.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="tiny"} 2.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="tiny"} 0.125
vllm:kv_cache_usage_perc{engine="1",model_name="tiny"} 0.5
# HELP vllm:generation_tokens_total Number of generation tokens processed.
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{engine="0",model_name="tiny"} 4096.0
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="tiny"} 6144.0
vllm:prefix_cache_queries_total{engine="1",model_name="tiny"} 2048.0
# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine="0",model_name="tiny"} 4096.0
vllm:prefix_cache_hits_total{engine="1",model_name="tiny"} 1024.0
"""
OLD_VLLM_TEXT = """\
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 1.0
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="m"} 0.25
"""


def test_our_targets_gauges_map_to_in_flight_queue_and_batch() -> None:
    stats = Stats("fastapi_batching")
    stats.in_flight.set(7)
    stats.queued.set(3)
    stats.batch_size.set(4)
    stats.tokens.inc(100)
    fields = server_fields(parse_metrics(stats.render().decode()))
    assert fields == {"in_flight": 7.0, "queue_depth": 3.0, "batch_size": 4.0,
                      "kv_cache_pct": None, "prefix_cache_queries": None,
                      "prefix_cache_hits": None, "source": "patternbench"}


def test_our_prefix_cache_counts_map_to_queries_and_hits() -> None:
    # what fastapi_batching adds to its /metrics when its prefix cache is on
    text = ("# TYPE patternbench_batch_size gauge\npatternbench_batch_size 2.0\n"
            "# TYPE patternbench_prefix_cache_queries gauge\n"
            "patternbench_prefix_cache_queries 4096.0\n"
            "# TYPE patternbench_prefix_cache_hits gauge\npatternbench_prefix_cache_hits 3072.0\n")
    fields = server_fields(parse_metrics(text))
    assert (fields["prefix_cache_queries"], fields["prefix_cache_hits"]) == (4096.0, 3072.0)


def test_vllm_gauges_are_summed_over_engines_and_kv_cache_is_a_percentage() -> None:
    values = parse_metrics(VLLM_TEXT)
    assert "vllm:generation_tokens_total" not in values  # only the kept gauges
    fields = server_fields(values)
    assert fields == {"in_flight": 10.0, "queue_depth": 2.0, "batch_size": 8.0,
                      "kv_cache_pct": 50.0, "prefix_cache_queries": 8192.0,
                      "prefix_cache_hits": 5120.0, "source": "vllm"}
    old = server_fields(parse_metrics(OLD_VLLM_TEXT))
    assert (old["batch_size"], old["queue_depth"], old["in_flight"], old["kv_cache_pct"]) == (
        1.0, None, None, 25.0)


def test_unknown_metrics_give_no_source() -> None:
    fields = server_fields(parse_metrics("# TYPE other gauge\nother 3\n"))
    assert fields["source"] is None and fields["batch_size"] is None


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body, status = {"/health": (b"ok", 200), "/metrics": (VLLM_TEXT.encode(), 200),
                        "/v1/health": (b"busy", 503)}.get(self.path, (b"no", 404))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def server() -> Iterator[str]:
    with serving(_Handler) as url:
        yield url


def test_health_and_metrics_samplers_against_a_real_server(server: str) -> None:
    clock = Clock()
    (health,) = HealthSeries(clock, server).sample()
    assert health["kind"] == "health" and health["status"] == 200 and health["error"] is None
    assert health["latency_ms"] > 0
    (busy,) = HealthSeries(clock, server + "/v1").sample()  # a base URL with a path
    assert busy["status"] == 503 and busy["latency_ms"] is None and busy["error"] == "HTTP 503"
    (scrape,) = MetricsScraper(clock, server).sample()
    assert scrape["source"] == "vllm" and scrape["batch_size"] == 8.0 and scrape["error"] is None
    (missing,) = MetricsScraper(clock, server + "/nothing").sample()
    assert missing["error"] == "HTTP 404" and missing["batch_size"] is None


def test_samplers_record_a_refused_connection() -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (health,) = HealthSeries(Clock(), f"http://127.0.0.1:{port}").sample()
    assert health["latency_ms"] is None and "ConnectionRefused" in health["error"]
    (scrape,) = MetricsScraper(Clock(), f"http://127.0.0.1:{port}").sample()
    assert scrape["source"] is None and "ConnectionRefused" in scrape["error"]


# What llama-server (llama.cpp, `--metrics`) exported mid-load here: counters and gauges without
# labels, under the `llamacpp:` prefix.
LLAMACPP_TEXT = """\
# HELP llamacpp:tokens_predicted_total Number of generation tokens processed
# TYPE llamacpp:tokens_predicted_total counter
llamacpp:tokens_predicted_total 24
# HELP llamacpp:requests_processing Number of requests processing
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 4
# HELP llamacpp:requests_deferred Number of requests deferred
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 3
# HELP llamacpp:n_busy_slots_per_decode Average number of busy slots per llama_decode() call
# TYPE llamacpp:n_busy_slots_per_decode gauge
llamacpp:n_busy_slots_per_decode 1
"""


def test_llamacpp_busy_slots_are_the_batch_and_deferred_requests_the_queue() -> None:
    fields = server_fields(parse_metrics(LLAMACPP_TEXT))
    assert fields["source"] == "llamacpp"
    assert (fields["batch_size"], fields["queue_depth"], fields["in_flight"]) == (4.0, 3.0, 7.0)
    assert fields["kv_cache_pct"] is None
