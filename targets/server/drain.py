"""The graceful drain as the request flow sees it: once SIGTERM arrives, nothing new is admitted.

The web server's own drain (uvicorn's graceful shutdown, gunicorn's graceful timeout) stops
accepting connections and waits for in-flight responses. What it cannot do is answer in the API's
shape: a request that arrives on a connection kept alive from before SIGTERM would still be
served, and a request still queued for a model slot when the drain timeout ends would be cut
with the server's plain-text 500. `Drain` closes both gaps:

- after `begin()`, `refusal()` is the 503 every new request gets (OpenAI-shaped, `Retry-After`,
  `Connection: close` so the client reconnects elsewhere);
- at `cutoff_s()` before the drain timeout ends, the flow refuses its queued requests with the
  same 503 (`targets.server.admission` `refuse_waiting`), so none is left to the server's cut.

    drain = Drain(timeout_s=30)
    drain.begin()          # from the SIGTERM handler (signal-safe: it only stores a time)
    drain.draining         # True: refuse new requests with drain.refusal()
"""

from __future__ import annotations

import time
from collections.abc import Callable

from targets.server.api import APIError

CUTOFF_MARGIN_S = 1.0  # queued requests are refused this long before the drain timeout ends
SHUTDOWN_RETRY_AFTER_S = 1


def shutting_down(reason: str = "the server is shutting down") -> APIError:
    """The 503 of a draining server: retry (on another replica) at once."""
    return APIError(503, f"{reason}; retry", type="server_overloaded", code="shutting_down",
                    headers={"Retry-After": str(SHUTDOWN_RETRY_AFTER_S),
                             "Connection": "close"})


class Drain:
    """Whether this server is draining, and until when (monotonic seconds)."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.began_at: float | None = None
        self._listeners: list[Callable[[float], None]] = []

    @property
    def draining(self) -> bool:
        return self.began_at is not None

    def cutoff_s(self) -> float:
        """Seconds after `begin()` when queued requests are refused: the timeout less a margin
        (at most a quarter of the timeout, so a short drain still serves its queue a while)."""
        return max(0.0, self.timeout_s - min(CUTOFF_MARGIN_S, self.timeout_s / 4))

    def past_cutoff(self) -> bool:
        began = self.began_at
        return began is not None and time.monotonic() - began >= self.cutoff_s()

    def on_begin(self, listener: Callable[[float], None]) -> None:
        """Call `listener(cutoff_s)` when the drain begins (at once if it has)."""
        self._listeners.append(listener)
        if self.began_at is not None:
            listener(self.cutoff_s())

    def begin(self) -> None:
        """Start draining (idempotent). No lock: this runs inside a signal handler, and
        listeners must only schedule work."""
        if self.began_at is not None:
            return
        self.began_at = time.monotonic()
        for listener in list(self._listeners):
            listener(self.cutoff_s())

    def refusal(self) -> APIError:
        return shutting_down()
