"""fastapi_batching — continuous (iteration-level) batching behind an asyncio server.

The pattern: what vLLM, TGI and SGLang do. One batcher thread owns the model and loops over
*steps*. Each step is one forward pass over every running sequence: each decoding sequence gets
its next token, and a request that arrived since the last step joins right away (its prompt is
prefilled in the same pass, at most `prefill_tokens` prompt tokens a step, so a long prompt does
not stall the others' decoding). A sequence that ends — EOS, `max_tokens`, or its client gone —
leaves the batch at once and its KV-cache slot goes to the next request. Tokens reach the event
loop once per step (`call_soon_threadsafe`) and leave as SSE chunks as they are produced. See
`targets/batching/scheduler.py` and `targets/batching/llama.py` (the batched forward pass).

Choose it when: many concurrent requests share one model — chat and API serving. A decode step
for 32 sequences costs a few times one for a single sequence, so throughput grows almost with
the batch while each request still streams from its first token, and short requests never wait
for long ones (unlike request-level batching, `fastapi_dynamic_batching`).

Pitfall: the batcher, not the web server, is now the bottleneck and the scheduler: per-token
latency (TPOT) grows with the batch, and every prompt that joins makes that step longer for
everybody (prefill interference). Cap the batch (`max_batch`) and the per-step prompt tokens
(`prefill_tokens`) for your latency goals; requests beyond `max_batch` queue, and beyond
`max_queue` get 503. All Python work on the step path (scheduling, sampling, detokenizing) is paid
by the whole batch at every step: keep it off the batcher thread.

Options: `max_batch` (sequences decoding together, each with a KV-cache slot; default 64),
`prefill_tokens` (prompt tokens per forward pass, beside one token per decoding sequence;
default 2048, vLLM's per-step budget on CPU: smaller cuts TTFT p50 and decode stalls, larger
clears a burst of prompts in fewer steps, which lowers TTFT p99 and raises throughput), `max_len`
(tokens per slot, prompt included; default the model's context), `linear` (`onednn` or `torch`
for the linear layers on CPU; default `onednn`), `torch_threads` (the batcher's intra-op threads;
default all cores the process may use), plus the shared `max_concurrency` (default `max_batch`)
and `max_queue`; `prefix_cache` (default true: a prompt whose leading 16-token blocks were seen
before copies their keys and values instead of recomputing them, targets/batching/prefix_cache.py)
and `prefix_cache_gb` (its memory, least recently used blocks evicted beyond it; default 1).
`/metrics` shows the running batch as `patternbench_batch_size` and the prefix cache's prompt
tokens looked up and served as `patternbench_prefix_cache_queries` / `_hits`.

Failures stay local: a sequence that cannot join or be sampled fails alone (its stream gets an
error event, its response a 500) and the batch goes on; a step that fails as a whole fails the
sequences of that batch, and the loop goes on. If the batcher loop itself dies, `/health` answers
503 with the reason and every in-flight and later request fails at once with an OpenAI error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from fastapi import FastAPI
from prometheus_client import Gauge

from targets.batching.load import load_batch_model
from targets.batching.scheduler import ContinuousBatcher
from targets.model.engine import GenParams
from targets.model.load import load_engine
from targets.model.tuning import configure_threads
from targets.server.asgi import model_app, serve_app
from targets.server.config import ServeConfig, positive
from targets.server.job import Job, ServedModel
from targets.server.stats import Stats


@dataclass(frozen=True)
class BatchingOptions:
    max_batch: int = positive(64)  # sequences decoding together, a KV-cache slot each
    prefill_tokens: int = positive(2048)  # prompt tokens per forward pass
    max_len: int | None = positive(None)  # tokens per slot; None: the model's context
    linear: Literal["onednn", "torch"] = "onednn"
    torch_threads: int | None = positive(None)  # None: the --torch-threads flag
    prefix_cache: bool = True  # reuse the KV of prompt blocks seen before, as vLLM does
    prefix_cache_gb: float = positive(1.0)  # memory for cached blocks (LRU beyond it)


def create_app(cfg: ServeConfig) -> FastAPI:
    opts = cfg.pattern_options(BatchingOptions)
    configure_threads(opts.torch_threads or cfg.torch_threads)
    engine = load_engine(cfg.model, cfg.device)
    max_len = opts.max_len or engine.max_context
    batch_model = load_batch_model(engine, opts.max_batch, max_len, backend=opts.linear,
                                   prefix_gb=opts.prefix_cache_gb if opts.prefix_cache else 0)
    batcher = ContinuousBatcher(batch_model, prefill_tokens=opts.prefill_tokens)
    stats = Stats(cfg.name)
    stats.batch_size.set_function(lambda: batcher.running)  # read at scrape time, no step cost
    if (prefix := getattr(batch_model, "prefix", None)) is not None:  # a PrefixCache
        Gauge("patternbench_prefix_cache_queries", "prompt tokens looked up in the prefix cache",
              registry=stats.registry).set_function(lambda: float(prefix.queries))
        Gauge("patternbench_prefix_cache_hits", "prompt tokens served from the prefix cache",
              registry=stats.registry).set_function(lambda: float(prefix.hits))

    def start() -> None:
        batcher.start()
        # Warm-up: the first passes build kernels and fault in cache pages; no client pays it.
        warm = GenParams(max_tokens=4, ignore_eos=True)
        list(batcher.generate([engine.eos_token_id] * 16, warm))

    def generate(job: Job) -> AsyncIterator[int]:
        # The batcher's own async iterator: the serving layer closes it (and sets job.cancel)
        # when the client goes away, and the sequence leaves the batch at the next step.
        return batcher.stream(job.ids, job.params, job.cancel)

    # Prompts are checked against the slot length, so one too long for a slot gets a 413.
    served = ServedModel(engine.name, batcher.model.max_len, engine.eos_token_id,
                         engine.tokenizer)
    # A batcher loop that died is reported: /health answers 503 and requests fail fast.
    return model_app(cfg, served, generate, stats=stats, concurrency=opts.max_batch,
                     on_startup=[start], on_shutdown=[batcher.stop], down=lambda: batcher.dead)


def serve(cfg: ServeConfig) -> None:
    serve_app(create_app(cfg), cfg)
