"""flask_threads — sync Flask on gunicorn's `gthread` worker: one OS thread per request.

The pattern: the simplest production setup. gunicorn runs `workers` processes (each loads its own
model replica) with `threads` threads each; a request holds a thread from first byte to last,
calling the model synchronously. Streaming is a generator the thread drives token by token.

Choose it when: traffic is low, requests are short, and simplicity wins.

Pitfall: a thread is held for the whole generation, so long streams exhaust the pool — new
requests, `/health` included, queue inside gunicorn with no backpressure. And threads beyond the
model replicas do not add throughput: they contend for the same cores (or GPU) on one model.

Options: `threads` (default 8), `workers` (processes = model replicas, default 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, request

from targets.api import APIError
from targets.config import ServeConfig
from targets.model import configure_threads, load_engine
from targets.serving import PROMETHEUS_CONTENT_TYPE, Job, Stats


def create_app(cfg: ServeConfig) -> Flask:
    """Build the WSGI app; loads the model (call it in the worker process, after fork)."""
    configure_threads(cfg.torch_threads)
    engine = load_engine(cfg.model, cfg.device)
    stats = Stats(cfg.name)
    app = Flask(cfg.name)

    def error(exc: APIError) -> Response:
        return Response(json_bytes(exc.body()), status=exc.status, headers=exc.headers,
                        mimetype="application/json")

    def handle(kind: Any) -> Response:
        try:
            from targets.api import parse_request

            req = parse_request(request.get_data(), kind, cfg.limits)
            job = Job.create(kind, req, engine, cfg.limits)
        except APIError as exc:
            return error(exc)
        stats.in_flight.inc()
        if not job.stream:
            try:
                for token in engine.generate(job.ids, job.params):
                    job.on_token(token)
            finally:
                stats.in_flight.dec()
            stats.tokens.inc(len(job.tokens))
            stats.requests.labels("ok").inc()
            return Response(json_bytes(job.response(engine.eos_token_id)),
                            mimetype="application/json")

        def events() -> Iterator[bytes]:
            outcome = "cancelled"
            try:
                for token in engine.generate(job.ids, job.params, job.cancel):
                    yield job.on_token(token)
                    stats.tokens.inc()
                yield job.tail(engine.eos_token_id)
                outcome = "ok"
            finally:  # GeneratorExit here when the client went away
                job.cancel.set()
                stats.in_flight.dec()
                stats.requests.labels(outcome).inc()

        return Response(events(), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/v1/completions")
    def completions() -> Response:
        return handle("completions")

    @app.post("/v1/chat/completions")
    def chat() -> Response:
        return handle("chat")

    @app.get("/health")
    def health() -> Response:
        return Response(b'{"status":"ok"}', mimetype="application/json")

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(stats.render(), content_type=PROMETHEUS_CONTENT_TYPE)

    @app.errorhandler(404)
    def not_found(_: Exception) -> Response:
        return error(APIError(404, f"no route {request.path}", type="not_found_error"))

    @app.errorhandler(405)
    def bad_method(_: Exception) -> Response:
        return error(APIError(405, f"{request.method} not allowed on {request.path}"))

    return app


def json_bytes(data: Any) -> bytes:
    import json

    return json.dumps(data, separators=(",", ":")).encode()


def serve(cfg: ServeConfig) -> None:
    """Run gunicorn (gthread) in the foreground; SIGTERM drains within `drain_timeout_s`."""
    from gunicorn.app.base import BaseApplication

    class Gunicorn(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
        def load_config(self) -> None:
            settings = {
                "bind": f"{cfg.host}:{cfg.port}",
                "worker_class": "gthread",
                "workers": cfg.int_opt("workers", 1),
                "threads": cfg.int_opt("threads", 8),
                "graceful_timeout": max(1, round(cfg.drain_timeout_s)),
                "timeout": 600,
                "keepalive": 5,
                "accesslog": None,
                "loglevel": "warning",
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return create_app(cfg)

    Gunicorn().run()
