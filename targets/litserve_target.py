"""litserve — our model behind LitServe's LitAPI: inference worker processes, request batching.

The pattern: request-level batching (as `fastapi_dynamic_batching`) in worker processes (as
`fastapi_processpool`), packaged by a framework. LitServe runs a FastAPI front end (uvicorn, in a
process of its own) and `workers_per_device` inference worker processes, each with its own copy of
the model, joined by queues. A worker gathers requests for up to `batch_timeout` seconds or
`max_batch_size` of them, runs them as ONE static batch (one padded forward pass per decode step,
`targets.batch_steps`), and sends every row's new tokens back each step; the front end streams
them to their clients. Greedy output equals `HFEngine.generate`'s.

Routes: our own, not LitServe's `OpenAISpec`. That spec serves only `/v1/chat/completions` (no
`/v1/completions`, no `/v1/models`), ends every stream with `finish_reason` "stop" whatever ended
it, puts `usage` on every chunk instead of honouring `stream_options.include_usage`, and answers
bad input with FastAPI's `{"detail": ...}`. So a `LitSpec` of ours (`targets.litserve_api.Routes`)
mounts the app every target serves (the shared request flow: API key, parsing, admission and 503,
SSE wire format, OpenAI errors, `/metrics`) on LitServe's FastAPI app; its jobs travel through
LitServe's request queue and response buffer to the workers. `/health` is LitServe's own (200
"ok" once every worker has loaded the model, 503 before).

Runs from `.venv-litserve` (`make litserve`: `litserve==0.2.19`, a venv of its own, because its
`uvicorn[standard]` would add watchfiles and websockets to `.venv`); `python -m targets litserve`
started from any other python replaces itself with the same command run by that venv's python
(`targets.framework_venv`). On SIGTERM/SIGINT LitServe's own shutdown terminates its front end
and workers.

Choose it when: you want the seed's knobs (workers, a batch window, streaming) without writing
the plumbing, on one machine.

Pitfall: every token crosses a process boundary twice (worker → front end queue → client), one
message per row per step, and a batch is static (head-of-line blocking as in
`fastapi_dynamic_batching`); each worker is a full model copy.

Options: `workers_per_device` (inference worker processes, 1), `max_batch_size` (16),
`batch_timeout` (seconds, 0.02), `venv` (default `.venv-litserve`, or
`$PATTERNBENCH_LITSERVE_VENV`), plus the shared `max_concurrency` (default 2 × max_batch_size ×
workers) and `max_queue`.
"""

from __future__ import annotations

from targets.framework_venv import reexec_in_venv
from targets.server.config import ServeConfig


def serve(cfg: ServeConfig) -> None:
    """Run LitServe until SIGTERM/SIGINT (see the docstring). The options are read in
    `.venv-litserve` (`targets.litserve_api.LitServeOptions`)."""
    reexec_in_venv("litserve", cfg.options)
    from targets.litserve_api import run

    run(cfg)
