"""flask_threads — sync Flask on gunicorn's `gthread` worker: one OS thread per request.

The pattern: the simplest production setup. gunicorn runs `workers` processes (each loads its own
model replica) with `threads` threads each; a request holds a thread from first byte to last,
calling the model synchronously. Streaming is a generator the thread drives token by token.

Choose it when: traffic is low, requests are short, and simplicity wins.

Pitfall: a thread is held for the whole generation, so long streams exhaust the pool — new
requests, `/health` included, queue inside gunicorn with no backpressure. And threads beyond the
model replicas do not add throughput: they contend for the same cores (or GPU) on one model.

Options: `threads` (default 8), `workers` (processes = model replicas, default 1), plus the
shared `max_concurrency` (default = threads) and `max_queue`, both per worker process. With
`max_concurrency` below `threads`, the spare threads answer 503s and `/health` under load.
Metrics are per worker process too (gunicorn hands each request to one worker).

Backpressure, the API key, body limits, drain and cancellation match the FastAPI targets: a
client that leaves mid-stream makes the next write fail, gunicorn closes the response iterator,
and `GeneratorExit` in the generator sets `job.cancel`. On SIGTERM gunicorn closes its listening
socket and waits up to `graceful_timeout` (= the drain timeout) for in-flight responses.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, request

from targets.admission import Slot, ThreadAdmission
from targets.api import (
    SSE_HEADERS,
    APIError,
    Kind,
    Limits,
    check_api_key,
    error_event,
    model_list,
    parse_request,
)
from targets.config import ServeConfig
from targets.model import configure_threads, load_engine
from targets.serving import PROMETHEUS_CONTENT_TYPE, Job, Stats

OPTIONS = ("threads", "workers")
DISCARD_LIMIT_BYTES = 16 << 20  # an oversized body up to this is read and dropped (clean 413)


def read_body(limits: Limits) -> bytes:
    """The request body, or `APIError(413)` when it is over `limits.max_body_bytes`."""
    too_large = APIError(413, f"request body is over the limit of {limits.max_body_bytes} bytes",
                         code="body_too_large")
    if (request.content_length or 0) > DISCARD_LIMIT_BYTES:
        raise too_large
    body = request.stream.read(limits.max_body_bytes + 1)
    if len(body) > limits.max_body_bytes:
        while request.stream.read(1 << 16):  # let the client finish sending, then answer
            pass
        raise too_large
    return body


def create_app(cfg: ServeConfig) -> Flask:
    """Build the WSGI app; loads the model (call it in the worker process, after fork)."""
    cfg.check_options(OPTIONS)
    configure_threads(cfg.torch_threads)
    engine = load_engine(cfg.model, cfg.device)
    stats = Stats(cfg.name)
    threads = cfg.int_opt("threads", 8)
    admission = ThreadAdmission(cfg.max_concurrency(threads), cfg.max_queue(), stats)
    app = Flask(cfg.name)

    def error(exc: APIError) -> Response:
        return Response(json_bytes(exc.body()), status=exc.status, headers=exc.headers,
                        mimetype="application/json")

    def tokens(job: Job) -> Iterator[int]:
        for token in engine.generate(job.ids, job.params, job.cancel):
            stats.tokens.inc()
            yield token

    def complete(job: Job, slot: Slot) -> Response:
        outcome = "error"
        try:
            for token in tokens(job):
                job.add(token)
            outcome = "ok"
        finally:
            slot.release()
            stats.requests.labels(outcome).inc()
        return Response(json_bytes(job.response(engine.eos_token_id)),
                        mimetype="application/json")

    def events(job: Job, slot: Slot) -> Iterator[bytes]:
        outcome = "cancelled"
        try:
            try:
                for token in tokens(job):
                    yield job.on_token(token)
            except Exception as exc:  # headers are sent: report it inside the stream
                app.logger.exception("generation failed mid-stream")
                outcome = "error"
                yield error_event(APIError(500, f"generation failed: {exc}", type="server_error"))
                return
            yield job.tail(engine.eos_token_id)
            outcome = "ok"
        finally:  # GeneratorExit lands here when a write to a departed client failed
            job.cancel.set()
            slot.release()
            stats.requests.labels(outcome).inc()

    def handle(kind: Kind) -> Response:
        try:
            check_api_key(request.headers.get("Authorization"), cfg.api_key)
            req = parse_request(read_body(cfg.limits), kind, cfg.limits)
            job = Job.create(kind, req, engine, cfg.limits)
            slot = admission.acquire()
        except APIError as exc:
            return error(exc)
        if not job.stream:
            return complete(job, slot)
        # The slot is released by the generator, or by close() if it never started.
        response = Response(events(job, slot), mimetype="text/event-stream", headers=SSE_HEADERS)
        response.call_on_close(slot.release)
        return response

    @app.post("/v1/completions")
    def completions() -> Response:
        return handle("completions")

    @app.post("/v1/chat/completions")
    def chat() -> Response:
        return handle("chat")

    started = int(time.time())

    @app.get("/v1/models")
    def models() -> Response:
        try:
            check_api_key(request.headers.get("Authorization"), cfg.api_key)
        except APIError as exc:
            return error(exc)
        body = model_list(engine.name, engine.max_context, started)
        return Response(json.dumps(body), mimetype="application/json")

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

    @app.errorhandler(500)
    def server_error(exc: Exception) -> Response:
        app.logger.error("unhandled error", exc_info=exc)
        return error(APIError(500, "internal error", type="server_error"))

    return app


def json_bytes(data: Any) -> bytes:
    import json

    return json.dumps(data, separators=(",", ":")).encode()


def serve(cfg: ServeConfig) -> None:
    """Run gunicorn (gthread) in the foreground; SIGTERM drains within `drain_timeout_s`."""
    from gunicorn.app.base import BaseApplication
    from gunicorn.workers.gthread import ThreadWorker

    class DrainingWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn ships no type hints
        """gthread, but on SIGTERM the listening socket closes at once (new clients are
        refused instead of waiting in the backlog until the drain ends)."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.alive:
                self.method_queue.defer(self.close_listeners)
            super().handle_exit(sig, frame)

        def close_listeners(self) -> None:
            self.set_accept_enabled(False)
            for listener in self.sockets:
                listener.close()

    class Gunicorn(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
        def load_config(self) -> None:
            settings = {
                "bind": f"{cfg.host}:{cfg.port}",
                "worker_class": DrainingWorker,
                "workers": cfg.int_opt("workers", 1),
                "threads": cfg.int_opt("threads", 8),
                "graceful_timeout": max(1, round(cfg.drain_s())),
                "timeout": 600,
                "keepalive": 5,
                "accesslog": None,
                "loglevel": "warning",
            }
            if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 25: no ~/.gunicorn
                settings["control_socket_disable"] = True
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Flask:
            return create_app(cfg)

    Gunicorn().run()
