"""The LitServe side of `litserve` (imported only in `.venv-litserve`): the LitAPI and the routes.

`ModelAPI` (a `LitAPI`) runs in each of LitServe's inference worker processes: `setup` loads the
model, `decode_request` turns a job's payload (prompt ids and parameters) into a batch row,
`predict` runs a gathered batch as one static batch and yields, per decode step, each row's new
token ids (`targets.batch_steps`), which LitServe sends back one message per row per step.

`Routes` (a `LitSpec`, LitServe's hook for an API of its own) wires the front end: it registers
no LitServe endpoint; our app (`targets.server.asgi.model_app`: API key, parsing, admission,
SSE wire format, errors, `/metrics`) is mounted on LitServe's FastAPI app behind LitServe's own
`/health`, and its jobs go to LitServe's request queue and come back from its response buffer.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import litserve as ls
from litserve.specs.base import LitSpec
from litserve.utils import LitAPIStatus, ResponseBufferItem
from starlette.types import ASGIApp, Receive, Scope, Send

from targets.batch_steps import END, batch_steps
from targets.model.engine import GenParams
from targets.model.load import load_engine
from targets.model.spec import GPT2_EOS, parse_model_spec
from targets.model.store import load_tokenizer, materialize
from targets.model.tuning import configure_threads
from targets.server.asgi import model_app
from targets.server.config import ServeConfig, nonneg, positive
from targets.server.job import Job, ModelInfo, ServedModel
from targets.server.stats import Stats


@dataclass(frozen=True)
class LitServeOptions:
    """The `litserve` target's own options (documented in `targets.litserve_target`)."""

    workers_per_device: int = positive(1)
    max_batch_size: int = positive(16)
    batch_timeout: float = nonneg(0.02)  # seconds
    venv: str | None = None  # read before parsing, by `targets.framework_venv`


@dataclass
class Row:
    """One request as the worker sees it: what `targets.batching.static` needs."""

    ids: list[int]
    params: GenParams
    cancel: threading.Event = field(default_factory=threading.Event)


class ModelAPI(ls.LitAPI):
    """Our model in a LitServe inference worker (one per `workers_per_device`)."""

    def __init__(self, cfg: ServeConfig, opts: LitServeOptions, spec: LitSpec) -> None:
        super().__init__(max_batch_size=opts.max_batch_size, batch_timeout=opts.batch_timeout,
                         stream=True, spec=spec)
        self.cfg = cfg

    def setup(self, device: str) -> None:
        configure_threads(self.cfg.torch_threads)
        self.engine = load_engine(self.cfg.model, self.cfg.device)

    def decode_request(self, request: dict[str, Any]) -> Row:
        return Row(list(request["ids"]), request["params"])

    def batch(self, inputs: list[Row]) -> list[Row]:
        return list(inputs)

    def predict(self, x: Row | list[Row]) -> Iterator[Any]:
        if isinstance(x, list):  # max_batch_size > 1: one list per step, a row each
            yield from batch_steps(self.engine, x)
        else:
            for step in batch_steps(self.engine, [x]):
                yield step[0]

    def unbatch(self, output: Iterator[Any]) -> Iterator[Any]:
        return output

    def encode_response(self, output: Iterator[Any]) -> Iterator[Any]:
        yield from output


def served_model(spec_text: str) -> ModelInfo:
    """What the front end needs to validate and format requests, without loading the weights
    (a `sim:` model is a cheap fake: loaded)."""
    spec = parse_model_spec(spec_text)
    if spec.sim is not None:
        return load_engine(spec, "cpu")
    folder = materialize(spec)
    config = json.loads((folder / "config.json").read_text())
    return ServedModel(name=spec.preset or folder.name,
                       max_context=int(config.get("max_position_embeddings", 2048)),
                       eos_token_id=int(config.get("eos_token_id") or GPT2_EOS),
                       tokenizer=load_tokenizer(folder))


class Routes(LitSpec):
    """Our OpenAI routes on LitServe's front end (see the module docstring)."""

    def __init__(self, cfg: ServeConfig, concurrency: int) -> None:
        super().__init__()
        self.api_path = "/v1"  # LitServe keys its queues by it; our app serves the routes
        self.cfg = cfg
        self.concurrency = concurrency
        self.app: ASGIApp | None = None  # built in the API server process, on first use

    @property
    def stream(self) -> bool:
        return True

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = super().__getstate__()
        state["app"] = None
        return state

    def decode_request(self, request: Any, context_kwargs: Any = None) -> Any:
        return request

    def encode_response(self, output: Any, context_kwargs: Any = None) -> Any:
        return output

    async def asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI app mounted on LitServe's: ours, built on the first request."""
        if self.app is None:
            self.app = model_app(self.cfg, served_model(self.cfg.model), self.generate,
                                 stats=Stats(self.cfg.name), concurrency=self.concurrency)
        await self.app(scope, receive, send)

    async def generate(self, job: Job) -> AsyncIterator[int]:
        uid = uuid.uuid4()
        pending: deque[Any] = deque()
        ready = asyncio.Event()
        self.response_buffer[uid] = ResponseBufferItem(event=ready, response_queue=pending)
        payload = {"ids": job.ids, "params": job.params}
        self.request_queue.put((self.response_queue_id, uid, time.monotonic(), payload))
        try:
            async for tokens, status in self.data_streamer(pending, ready, send_status=True):
                if status == LitAPIStatus.ERROR:
                    raise RuntimeError(f"litserve worker failed: {tokens!r}")
                for token in tokens:
                    if token == END:
                        return
                    yield token
        finally:
            self.response_buffer.pop(uid, None)


def run(cfg: ServeConfig) -> None:
    """Run LitServe on `cfg.port` until SIGTERM/SIGINT (`ValueError` naming a bad option)."""
    opts = cfg.pattern_options(LitServeOptions)
    concurrency = cfg.shared.max_concurrency or 2 * opts.max_batch_size * opts.workers_per_device
    routes = Routes(cfg, concurrency)
    server = ls.LitServer(ModelAPI(cfg, opts, routes), accelerator="cpu", devices=1,
                          workers_per_device=opts.workers_per_device, timeout=False)
    server.app.mount("", app=routes.asgi)  # after LitServe's /health, /info, /openapi.json
    # SIGTERM as ^C: LitServe's run() catches KeyboardInterrupt and terminates its processes.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    server.run(host=cfg.host, port=cfg.port, num_api_servers=1, generate_client_file=False,
               log_level="warning")
