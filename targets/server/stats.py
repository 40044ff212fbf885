"""`/metrics`: the Prometheus counters and gauges one target process keeps (`Stats`).

Every local target exports the same names, so the harness reads them the same way:
`patternbench_in_flight`, `patternbench_queue_depth`, `patternbench_batch_size`,
`patternbench_generated_tokens_total`, `patternbench_requests_total{outcome}`,
`patternbench_rejections_total` and `patternbench_target_info{target}`. A pattern adds its own on
`stats.registry` (a gateway's pool histograms, a batcher's prefix-cache hits).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Stats:
    """Prometheus counters and gauges of one target process (`/metrics`)."""

    def __init__(self, target: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"target": target}
        self.in_flight = Gauge("patternbench_in_flight", "requests admitted and not finished",
                               registry=self.registry)
        self.queued = Gauge("patternbench_queue_depth", "requests waiting for a model slot",
                            registry=self.registry)
        self.batch_size = Gauge("patternbench_batch_size", "sequences in the running batch",
                                registry=self.registry)
        self.tokens = Counter("patternbench_generated_tokens", "output tokens generated",
                              registry=self.registry)
        self.requests = Counter("patternbench_requests", "requests finished by outcome",
                                ["outcome"], registry=self.registry)
        self.rejections = Counter("patternbench_rejections", "requests refused with 503",
                                  registry=self.registry)
        self.info = Gauge("patternbench_target_info", "target identity", list(labels),
                          registry=self.registry)
        self.info.labels(**labels).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
