"""The Flask / gunicorn adapter: puts the threaded request flow (`ThreadFlow`) on a WSGI server.

It only translates and adds what never reaches a model, like `targets.server.asgi` does for asyncio:

- a Flask request becomes the flow's `SyncCall` (headers, the body read through a
  `BodyReader`); a `Reply` becomes a Response, an `Events` a streamed response whose generator
  gunicorn closes when a write to a departed client fails (which cancels the job),
- `/health`, `/metrics` (per worker process: gunicorn hands each request to one worker),
- `APIError`, 404 / 405 and unexpected exceptions as OpenAI-shaped JSON,
- the graceful drain (`serve_app`): gunicorn's `gthread` worker, which on SIGTERM closes its
  listening socket at once and waits up to `graceful_timeout` (= the drain timeout) for
  in-flight responses; the flow's `Drain` begins too, so a request on a connection kept alive
  from before gets a 503 (gunicorn closes the connection after it) and the queue is refused
  before the timeout ends.

    app = model_app(cfg, engine, lambda job: engine.generate(job.ids, job.params, job.cancel),
                    stats=Stats(cfg.name), concurrency=8)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, InternalServerError

from targets.server.api import SSE_HEADERS, APIError, Limits
from targets.server.config import ServeConfig
from targets.server.exchange import BodyReader, Events, Reply, internal_error, route_error
from targets.server.flow import ThreadFlow
from targets.server.generation import ThreadJobs
from targets.server.job import ModelInfo, SyncTokenStream
from targets.server.stats import PROMETHEUS_CONTENT_TYPE, Stats

READ_CHUNK_BYTES = 1 << 16


class _RequestCall:
    """Flask's current request as the flow's `SyncCall`."""

    def header(self, name: str) -> str | None:
        return request.headers.get(name)

    def body(self, limits: Limits) -> bytes:
        reader = BodyReader(limits, request.headers.get("Content-Length"))
        while chunk := request.stream.read(READ_CHUNK_BYTES):
            if not reader.feed(chunk):
                break
        return reader.body()


def _response(reply: Reply | Events[Iterator[bytes]]) -> Response:
    if isinstance(reply, Events):
        response = Response(reply.chunks, mimetype="text/event-stream", headers=SSE_HEADERS)
        response.call_on_close(reply.on_close)  # also when the generator never started
        return response
    return Response(reply.body, status=reply.status, headers=dict(reply.headers),
                    mimetype=reply.media_type)


def model_app(cfg: ServeConfig, model: ModelInfo, generate: SyncTokenStream, *, stats: Stats,
              concurrency: int, counts_tokens: bool = False) -> Flask:
    """The OpenAI-compatible WSGI app around `generate`: the flow with the model-job strategy
    (see `ThreadFlow`, `ThreadJobs`)."""
    jobs = ThreadJobs(cfg, model, generate, stats, counts_tokens=counts_tokens)
    flow = ThreadFlow(cfg, jobs, stats, concurrency=concurrency)
    app = Flask(cfg.name)
    app.extensions["patternbench_drain"] = flow.drain  # begun by the worker on SIGTERM

    @app.post("/v1/completions")
    def completions() -> Response:
        return _response(flow.respond(_RequestCall(), "completions"))

    @app.post("/v1/chat/completions")
    def chat() -> Response:
        return _response(flow.respond(_RequestCall(), "chat"))

    @app.get("/v1/models")
    def models() -> Response:
        return _response(flow.respond(_RequestCall(), "models"))

    @app.get("/health")
    def health() -> Response:
        return Response(b'{"status":"ok"}', mimetype="application/json")

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(stats.render(), content_type=PROMETHEUS_CONTENT_TYPE)

    _add_error_handlers(app)
    return app


def _add_error_handlers(app: Flask) -> None:
    """Render `APIError`, 404/405 and unexpected exceptions as OpenAI-shaped JSON."""

    @app.errorhandler(APIError)
    def api_error(exc: APIError) -> Response:
        return _response(Reply.error(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        error = route_error(exc.code or 500, request.method, request.path,
                            exc.description or "")
        return _response(Reply.error(error))

    @app.errorhandler(InternalServerError)
    def server_error(exc: InternalServerError) -> Response:
        return _response(Reply.error(internal_error(exc.original_exception or exc)))


def serve_app(cfg: ServeConfig, load: Callable[[], Flask], *, threads: int, workers: int) -> None:
    """Run gunicorn (gthread) in the foreground; `load` builds the app in each worker process
    (after the fork, so each loads its own model). SIGTERM drains within `drain_timeout_s`."""
    from gunicorn.app.base import BaseApplication
    from gunicorn.workers.gthread import ThreadWorker

    class DrainingWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn ships no type hints
        """gthread, but on SIGTERM the listening socket closes at once (new clients are
        refused instead of waiting in the backlog until the drain ends)."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            drain = getattr(self, "wsgi", None) and self.wsgi.extensions.get("patternbench_drain")
            if drain is not None:  # kept-alive connections now get a 503 and are closed
                drain.begin()
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
                "workers": workers,
                "threads": threads,
                "graceful_timeout": max(1, round(cfg.shared.drain_timeout_s)),
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
            return load()

    Gunicorn().run()
