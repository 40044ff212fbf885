"""What every client of a parity check is asked to send, and what one leg measured.

A `ParityLoad` is the same for every client: chat completions, streamed, `requests` requests of
`prompt_tokens` random-text tokens asking for exactly `output_tokens` (`ignore_eos`) at one
`temperature`, arriving as a Poisson process of `rate_rps`. A `Leg` is one client's run of it:
the metrics of `METRICS` (None where the client has no such metric), and its request counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.records.typed_json import doc


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    unit: str


METRICS: tuple[Metric, ...] = (
    Metric("output_tok_s", "output tok/s", "tok/s"),
    Metric("req_s", "requests/s", "req/s"),
    Metric("ttft_p50_ms", "TTFT p50", "ms"),
    Metric("ttft_p99_ms", "TTFT p99", "ms"),
    Metric("tpot_p50_ms", "TPOT p50", "ms"),
    Metric("itl_p50_ms", "ITL p50", "ms"),
    Metric("e2e_p50_ms", "E2E p50", "ms"),
)
"""The compared metrics, in table order. TPOT is per request (E2E − TTFT) / (tokens − 1); ITL
the pooled gaps between tokens (`harness.report.glossary` has every tool's name for each)."""


@dataclass(frozen=True)
class ParityLoad:
    """The load every client sends; `model` is the served model name, `tokenizer` the model spec
    whose tokenizer folder the clients build prompts with."""

    url: str = doc("the server's base URL (no /v1)")
    model: str = doc("the model name sent in requests")
    tokenizer: str = doc("model spec of the tokenizer the clients load (a folder or preset)")
    rate_rps: float = doc("Poisson arrival rate, requests per second")
    requests: int = doc("requests per leg")
    prompt_tokens: int = doc("prompt length in tokens (random text)")
    output_tokens: int = doc("output tokens asked for, EOS ignored")
    temperature: float = doc("sampling temperature every client sends (0: greedy); a client "
                             "that sends none gets the server's default, 1.0 on most")
    seed: int = doc("seed of each client's prompt and arrival draws (per round: seed + round)")
    client_cpus: tuple[int, ...] | None = doc("CPU cores every client is pinned to, or None")

    @property
    def expected_s(self) -> float:
        """How long the arrivals of one leg take, on average."""
        return self.requests / self.rate_rps


@dataclass(frozen=True)
class Leg:
    """One client's run of the load in one round."""

    client: str = doc("the client's name")
    round: int = doc("the round, from 1")
    values: dict[str, float | None] = doc("metric key (METRICS) → value; None: not measured")
    completed: int = doc("requests completed")
    failed: int = doc("requests that failed")
    wall_s: float = doc("wall time of the leg, start-up included, s")
    folder: str = doc("where the client's own output is, relative to the parity folder")
    error: str | None = doc("why the leg has no numbers (the client failed), else null", None)
