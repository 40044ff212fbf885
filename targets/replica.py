"""The child side of `fastapi_processpool`: one model replica in its own process.

`replica_main` loads the model, reports what the front end needs (name, context, EOS id), then
runs one request at a time. Only small tuples of ints and strings cross the process boundary:

    inbox  ("run", request_id, prompt_ids, GenParams fields)  |  ("cancel", request_id)  |  None
    outbox ("ready", replica_index, info dict)  |  (request_id, token_id)
           (request_id, END)  |  (request_id, ("error", message))

A listener thread reads the inbox while the main thread generates, so a cancel reaches the
running request between two tokens. The process ignores SIGINT/SIGTERM: its parent drains first,
then stops it by sending None.
"""

from __future__ import annotations

import queue
import signal
import threading
from typing import Any

END = -1  # never a token id


def replica_main(index: int, model: str, device: str, threads: int, inbox: Any,
                 outbox: Any) -> None:
    """Entry point of a replica process (`multiprocessing` spawn target)."""
    from targets.model import GenParams, configure_threads, load_engine

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
