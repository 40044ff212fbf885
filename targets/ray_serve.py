"""ray_serve — our model in a Ray Serve deployment: replicas as Ray actors, `@serve.batch`.

The pattern: request-level batching (as `fastapi_dynamic_batching`) packaged by a framework that
scales it out. Ray Serve's HTTP proxy (an actor, listening on the target's port) routes each
request to a replica of the deployment (`num_replicas` actors, each with its own copy of the
model). In the replica our FastAPI app (the shared request flow: API key, parsing, admission, SSE
wire format, errors) turns the request into a `Job`; `@serve.batch` gathers jobs for up to
`batch_wait_timeout_s` or `max_batch_size` of them and runs them as ONE static batch (one padded
forward pass per decode step, `targets.batch_steps`), streaming each job's tokens back as they
come. Greedy output equals `HFEngine.generate`'s.

The target starts a local Ray instance (`ray.init(num_cpus=…, include_dashboard=False)`: GCS,
raylet, workers), Serve on it (`serve.start` with HTTP on the given port, `serve.run(…,
blocking=False)`), and on SIGTERM/SIGINT stops both (`serve.shutdown(); ray.shutdown()`), so no
Ray process outlives it. With `address` it joins an existing cluster instead (`ray.init(address)`),
deploys the app there under its own name and only deletes that app on stop. A multi-node
cluster is Ray's `ray start --head` / `ray start --address HEAD:6379`, then `address =
"HEAD:6379"` (docs/targets.md); not verified here: Ray 2.60's default token authentication
refused the target's `ray.init` on a cluster `ray start` had made.

Runs from `.venv-ray` (`make ray`: `ray[serve]==2.60.0`, a venv of its own); `python -m targets
ray_serve` started from any other python replaces itself with the same command run by that venv's
python (`targets.framework_venv`).

Choose it when: one machine no longer holds the replicas you need, or the model is one step of a
Python pipeline (pre/post-processing deployments, several models) that must scale per step.

Pitfall: everything is an actor hop. A token travels replica → proxy → client through Ray's
object transfer, so per-token overhead is higher than a single-process server's; the batch is
still static (head-of-line blocking as in `fastapi_dynamic_batching`), and each replica is a full
model copy. Ray itself takes ~10 s and a few hundred MB to start. Ray's router queues requests
for a busy replica without limit by default; the admission limits here (`max_concurrency`,
`max_queue`, then 503) are our flow's, per replica.

Options: `num_replicas` (1), `max_batch_size` (16), `batch_wait_timeout_s` (0.02),
`replica_cpus` (Ray CPUs per replica, 1), `num_cpus` (the local Ray instance's CPUs; default:
enough for the replicas and at least the CPUs this process may use), `address` (an existing Ray
cluster, e.g. "HEAD:6379" or "auto"), `app_name` ("patternbench"), `venv` (default `.venv-ray`,
or `$PATTERNBENCH_RAY_VENV`), plus the shared `max_concurrency` (per replica, default 2 ×
max_batch_size), `max_queue` and `drain_timeout_s` (Ray's graceful shutdown of a replica).
"""

from __future__ import annotations

from targets.framework_venv import reexec_in_venv
from targets.server.config import ServeConfig

READY_TIMEOUT_S = 240.0  # Ray's own start-up is ~10 s idle; the model load comes on top


def serve(cfg: ServeConfig) -> None:
    """Run the deployment on Ray until SIGTERM/SIGINT, then stop Ray (see the docstring). The
    options are read in `.venv-ray` (`targets.ray_deployment.RayServeOptions`)."""
    reexec_in_venv("ray_serve", cfg.options)
    from targets.ray_deployment import run

    run(cfg)
