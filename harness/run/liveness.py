"""Whether the target is still alive while a load point runs: process exit and `/health`.

    watch = Liveness(url, process, clock, on_dead=lambda reason: ...)
    with watch:
        ...  # the load; `on_dead(reason)` is called once, from the watch's thread
    watch.reason, watch.detected_at   # None, or why and when (run clock, s) it was declared dead

A thread checks every `INTERVAL_S` whether the target's process has exited (a `kill -9`, a
crash), and GETs `/health` (timeout `HEALTH_TIMEOUT_S`): `HEALTH_FAILURES` answers in a row that
are an HTTP 5xx (a dead engine answers 503) or a refused connection declare the target dead
(a 4xx is an answer: an external server may have no /health). A `/health` that does not answer
in time does not count: a blocked event loop (`fastapi_blocking`) is slow, not dead. The
driver's own `ErrorStreak` (`harness.drivers.backoff`) catches what neither sees (every request
failing behind a 200). Once `expected()` (a `[fault]` sent SIGTERM, `harness.run.fault`), /health
is not checked and the exit is reported as `EXPECTED`. While `skip_health()` (a rolling deploy's
fleet, `harness.run.rolling`: the balancer's /health may reach a replica going away, or one that
crashed while others serve), /health is not checked either, but the balancer's exit is still a
death.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Sequence
from types import TracebackType

from harness.run.fault import EXPECTED
from harness.samples import Clock, Sample
from harness.summary.record import PointFailure
from harness.telemetry.target_http import Endpoint

INTERVAL_S = 0.2
HEALTH_TIMEOUT_S = 2.0
HEALTH_FAILURES = 3


class Liveness:
    """Context manager: watches `process` (None: an external server) and `base_url/health`."""

    def __init__(self, base_url: str, process: subprocess.Popen[bytes] | None, clock: Clock,
                 on_dead: Callable[[str], None], interval_s: float = INTERVAL_S,
                 expected: Callable[[], bool] = lambda: False,
                 skip_health: Callable[[], bool] = lambda: False) -> None:
        self.process, self.clock, self.on_dead = process, clock, on_dead
        self.expected = expected  # True once a fault signalled the target (`harness.run.fault`)
        self.skip_health = skip_health  # True while a deploy replaces what /health reaches
        self.endpoint = Endpoint(base_url, "/health", HEALTH_TIMEOUT_S)
        self.interval_s = interval_s
        self.reason: str | None = None
        self.detected_at: float | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="patternbench-liveness",
                                       daemon=True)

    def __enter__(self) -> Liveness:
        self.thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop.set()
        self.thread.join()

    def _watch(self) -> None:
        failures = 0
        while not self.stop.wait(self.interval_s):
            reason = self._exited()
            if self.expected():  # a draining target answers 503 on purpose; its exit is due
                if reason is None:
                    continue
                reason = f"{EXPECTED}; {reason}"
            elif reason is None and not self.skip_health():
                failed = self._health_failure()
                if failed is None:
                    failures = 0
                elif failed:  # a slow answer (False) neither counts nor resets
                    failures += 1
                if failures >= HEALTH_FAILURES:
                    reason = f"/health failed {failures} times in a row ({failed})"
            if reason is not None:
                self.reason, self.detected_at = reason, self.clock.now()
                self.on_dead(reason)
                return

    def _exited(self) -> str | None:
        code = self.process.poll() if self.process is not None else None
        return None if code is None else f"the target process exited with code {code}"

    def _health_failure(self) -> str | bool | None:
        """None: healthy (200); a reason: a failure that counts; False: no answer in time."""
        try:
            status, _ = self.endpoint.get()
        except TimeoutError:
            return False
        except ConnectionRefusedError:
            return "connection refused"
        except OSError as exc:
            return f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # http.client.HTTPException: a broken answer
            return f"{type(exc).__name__}: {exc}"
        return f"HTTP {status}" if status >= 500 else None  # 404: a server without /health


def point_failure(reason: str, detected_at_s: float, samples: Sequence[Sample]) -> PointFailure:
    """The point's `failure` record: `reason`, when it was declared, and when the first request
    failed after the last one that succeeded (ended; `failed_at`)."""
    last_ok = max((s.done_at for s in samples if s.ok and s.done_at is not None), default=None)
    failed = [s for s in samples if s.failed]  # an abandoned stream is no failure
    failed_at = [s.failed_at for s in failed if s.failed_at is not None
                 and (last_ok is None or s.failed_at >= last_ok)]
    return PointFailure(reason=reason, detected_at_s=detected_at_s,
                        first_error_at_s=min(failed_at, default=None),
                        failed_requests=len(failed))
