"""`fastapi_processpool`'s private plumbing: model replicas in processes of their own.

The parent side, `ReplicaPool`, starts the replica processes (`multiprocessing`, spawn), keeps
the queue of free replicas and the request each one runs, and a reader thread that routes the
tokens coming back into the event loop. The child side, `replica_main`, loads the model, reports
what the front end needs (name, context, EOS id), then runs one request at a time. Only small
tuples of ints and strings cross the process boundary:

    inbox  ("run", request_id, prompt_ids, GenParams fields)  |  ("cancel", request_id)  |  None
    outbox ("ready", replica_index, info dict)  |  (request_id, token_id)
           (request_id, END)  |  (request_id, ("error", message))

A listener thread in the child reads the inbox while its main thread generates, so a cancel
reaches the running request between two tokens. The child ignores SIGINT/SIGTERM: its parent
drains first, then stops it by sending None.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import queue
import signal
import threading
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from targets.server.channel import TokenChannel

if TYPE_CHECKING:
    from targets.server.job import Job
    from targets.server.stats import Stats

END = -1  # never a token id
READY_TIMEOUT_S = 300.0
log = logging.getLogger("patternbench.target")


class ReplicaPool:
    """Replica processes, the request each one runs, and the thread that reads their tokens.

    Start `reader` once the event loop runs; `stop()` after the drain.
    """

    def __init__(self, model: str, device: str, replicas: int, threads: int,
                 stats: Stats) -> None:
        self.stats = stats
        ctx = multiprocessing.get_context("spawn")  # fork after torch threads start is unsafe
        self.outbox: Any = ctx.Queue()
        self.inboxes: list[Any] = [ctx.Queue() for _ in range(replicas)]
        self.procs = [ctx.Process(target=replica_main, name=f"replica-{i}", daemon=True,
                                  args=(i, model, device, threads, self.inboxes[i], self.outbox))
                      for i in range(replicas)]
        for proc in self.procs:
            proc.start()
        self.info = self._wait_ready()
        self.free: asyncio.Queue[int] = asyncio.Queue()  # replicas with no request
        for i in range(replicas):
            self.free.put_nowait(i)
        self.running: dict[int, tuple[int, TokenChannel]] = {}  # request id → (replica, out)
        self.ids = itertools.count()
        self.stopping = False
        self.reader = threading.Thread(target=self._read, name="replica-reader", daemon=True)

    def _wait_ready(self) -> dict[str, Any]:
        info: dict[str, Any] = {}
        for _ in self.procs:
            try:
                _, _, info = self.outbox.get(timeout=READY_TIMEOUT_S)
            except queue.Empty:
                self.stop()
                raise RuntimeError("a model replica did not start; see the log above") from None
        return info

    def send(self, replica: int, job: Job) -> tuple[int, TokenChannel]:
        """Start `job` on the free `replica`: (request id, the channel its tokens arrive on)."""
        rid = next(self.ids)
        out = TokenChannel(asyncio.get_running_loop())
        self.running[rid] = (replica, out)
        self.inboxes[replica].put(("run", rid, list(job.ids), asdict(job.params)))
        return rid, out

    def cancel(self, rid: int) -> None:
        """Stop request `rid` if it still runs; its replica is freed when it answers END."""
        entry = self.running.get(rid)  # the reader thread may drop it meanwhile
        if entry is not None:
            self.inboxes[entry[0]].put(("cancel", rid))

    def _read(self) -> None:
        """Reader thread: route each (request id, token) to its channel in the loop."""
        while not self.stopping:
            try:
                rid, item = self.outbox.get(timeout=1.0)
            except queue.Empty:
                self._fail_dead()
                continue
            replica, out = self.running.get(rid, (-1, None))
            if out is None:
                continue
            if isinstance(item, int) and item != END:
                self.stats.tokens.inc()  # produced by the replica, read or not
                out.put(item)
                continue
            if isinstance(item, tuple):
                out.fail(RuntimeError(f"replica {replica}: {item[1]}"))
            out.close()
            del self.running[rid]
            out.loop.call_soon_threadsafe(self.free.put_nowait, replica)  # replica is free

    def _fail_dead(self) -> None:
        for rid, (replica, out) in list(self.running.items()):
            if not self.procs[replica].is_alive():
                log.error("replica %d died (exit code %s)", replica, self.procs[replica].exitcode)
                out.fail(RuntimeError(f"replica {replica} died"))
                del self.running[rid]

    def stop(self) -> None:
        """After the drain: ask each replica to exit, then make sure it has."""
        self.stopping = True
        for inbox in self.inboxes:
            inbox.put(None)
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()


def replica_main(index: int, model: str, device: str, threads: int, inbox: Any,
                 outbox: Any) -> None:
    """Entry point of a replica process (`multiprocessing` spawn target)."""
    from targets.model.engine import GenParams
    from targets.model.load import load_engine
    from targets.model.tuning import configure_threads

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_threads(threads)
    engine = load_engine(model, device)
    outbox.put(("ready", index, {"name": engine.name, "max_context": engine.max_context,
                                 "eos_token_id": engine.eos_token_id}))
    jobs: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
    cancels: dict[int, threading.Event] = {}
    lock = threading.Lock()

    def listen() -> None:
        while True:
            msg = inbox.get()
            if msg is None:
                jobs.put(None)
                return
            with lock:
                if msg[0] == "run":
                    cancels[msg[1]] = threading.Event()
                    jobs.put(msg)
                elif msg[0] == "cancel" and msg[1] in cancels:
                    cancels[msg[1]].set()

    threading.Thread(target=listen, name="inbox", daemon=True).start()
    while (job := jobs.get()) is not None:
        _, rid, ids, fields = job
        try:
            for token in engine.generate(ids, GenParams(**fields), cancels[rid]):
                outbox.put((rid, token))
            outbox.put((rid, END))
        except Exception as exc:
            outbox.put((rid, ("error", f"{type(exc).__name__}: {exc}")))
        finally:
            with lock:
                del cancels[rid]
