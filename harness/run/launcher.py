"""Start a target in its own process on a free 127.0.0.1 port, wait until it is ready, stop it.

The target runs as `python -m targets NAME ...` in a new session (process group), its output
going to a log file in the run folder. Stopping sends SIGTERM (the server drains in-flight
requests), then SIGKILL to the whole group after `stop_timeout_s`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal


class LaunchError(RuntimeError):
    """The target did not become ready; the message carries the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` now (the OS picks it): for a target, or locust's master."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass(frozen=True)
class Upstream:
    """The server a gateway target forwards to: its base URL, and the registry target started
    for it (None: `upstream_url` named a server already running)."""

    url: str
    target: str | None = None


@dataclass
class TargetProcess:
    """A running target: what the point reads about it. Use as a context manager so it is
    always stopped.

    `process` is None for an external server (nothing of ours runs: `pid` is None, `stop` does
    nothing). `companions` are processes started for this target (a proxy's upstream), stopped
    after it. `model_name`, `api_key` and `api` are what the driver must send this target
    instead of the scenario's model, no key and `workload.api` (an external server's own; None:
    the scenario's). `gateway` is set for a gateway target (its upstream): the point scrapes its
    connection pool and the disconnect fault reads the upstream's counters too.
    """

    label: str
    url: str
    process: subprocess.Popen[bytes] | None
    log_path: Path
    startup_s: float = 0.0
    model_name: str | None = None
    api_key: str | None = None
    api: Literal["completions", "chat"] | None = None
    gateway: Upstream | None = None
    companions: list[TargetProcess] = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, wait up to `timeout_s`, then SIGKILL the process group (then the
        companions'). Returns the exit code; None for an external server."""
        try:
            return self._stop_own(timeout_s)
        finally:
            for companion in self.companions:
                companion.stop(timeout_s)

    def _stop_own(self, timeout_s: float) -> int | None:
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=timeout_s)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # leftovers: gunicorn or pool workers
        if proc.poll() is None:  # it left its process group (vLLM's server can): kill it alone
            proc.kill()
        try:
            return proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None

    def __enter__(self) -> TargetProcess:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def wait_ready(url: str, proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float,
               headers: Mapping[str, str] | None = None, ready_status: int | None = 200,
               cancelled: Callable[[], bool] = lambda: False) -> float:
    """Poll `url` until it answers `ready_status` (None: any HTTP answer); fail fast if the
    process exits or `cancelled()`. Returns seconds waited."""
    start = time.monotonic()
    request = urllib.request.Request(url, headers=dict(headers or {}))
    while True:
        code = proc.poll()
        if code is not None:
            raise LaunchError(f"target exited with code {code} before it was ready; "
                              f"log {log_path}:\n{log_tail(log_path)}")
        if cancelled():
            raise LaunchError("cancelled before it was ready")
        try:
            with urllib.request.urlopen(request, timeout=2) as resp:
                if ready_status is None or resp.status == ready_status:
                    return time.monotonic() - start
        except urllib.error.HTTPError as exc:
            if ready_status is None:
                return time.monotonic() - start
            exc.close()
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() - start > timeout_s:
            raise LaunchError(f"target not ready after {timeout_s:.0f} s; "
                              f"log {log_path}:\n{log_tail(log_path)}")
        time.sleep(0.1)


def start_process(
    label: str,
    argv: Sequence[str],
    url: str,
    log_path: Path,
    *,
    ready_path: str = "/health",
    ready_timeout_s: float = 120.0,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    ready_status: int | None = 200,
    cancelled: Callable[[], bool] = lambda: False,
) -> TargetProcess:
    """Start any server command and wait until `url + ready_path` answers `ready_status` (None:
    any HTTP answer); `cancelled()` stops the wait (a `LaunchError`, the process stopped)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log: IO[bytes] = log_path.open("ab")
    full_env = {**os.environ, **(env or {})}
    start = time.monotonic()
    proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, env=full_env,
                            cwd=cwd, start_new_session=True)
    log.close()
    target = TargetProcess(label=label, url=url, process=proc, log_path=log_path)
    try:
        wait_ready(url + ready_path, proc, log_path, ready_timeout_s,
                   ready_status=ready_status, cancelled=cancelled)
    except BaseException:
        target.stop(timeout_s=5)
        raise
    target.startup_s = time.monotonic() - start
    return target


def start_target(
    label: str,
    name: str,
    *,
    model: str,
    device: str,
    options: Mapping[str, Any],
    log_path: Path,
    ready_timeout_s: float = 120.0,
    env: Mapping[str, str] | None = None,
    extra_args: Sequence[str] = (),
    cancelled: Callable[[], bool] = lambda: False,
) -> TargetProcess:
    """Start registry target `name` as `python -m targets` on a free port (`cancelled()`: stop
    waiting for it, see `start_process`)."""
    port = free_port()
    argv = [sys.executable, "-m", "targets", name, "--port", str(port), "--model", model,
            "--device", device, "--options-json", json.dumps(dict(options)), *extra_args]
    return start_process(label, argv, f"http://127.0.0.1:{port}", log_path,
                         ready_timeout_s=ready_timeout_s, env=env, cancelled=cancelled)


def connect_external(label: str, options: Mapping[str, Any], log_path: Path,
                     timeout_s: float = 10.0) -> TargetProcess:
    """An external OpenAI-compatible server: check it answers; never start or stop it."""
    from targets.external import ExternalConfig, ExternalError, listed_model, probe

    start = time.monotonic()
    try:
        cfg = ExternalConfig.from_options(options)
        probe(cfg, timeout_s)
    except ExternalError as exc:
        raise LaunchError(str(exc)) from None
    if cfg.model is None:  # the name the server answers to, as an OpenAI client would ask
        cfg = replace(cfg, model=listed_model(cfg))
    return TargetProcess(label=label, url=cfg.url, process=None, log_path=log_path,
                         startup_s=time.monotonic() - start, model_name=cfg.model,
                         api_key=cfg.api_key, api=cfg.api)


def start_proxy(
    label: str,
    name: str,
    *,
    model: str,
    device: str,
    options: Mapping[str, Any],
    log_path: Path,
    ready_timeout_s: float = 120.0,
    extra_args: Sequence[str] = (),
) -> TargetProcess:
    """Start a gateway target after its upstream; stopping the gateway stops both.

    Option `upstream` names the registry target to start first (default `fastapi_threadpool`)
    with `upstream_options`; or `upstream_url` points at a server already running (nothing
    more is started). The rest of the options go to the gateway, plus `upstream_url`;
    `extra_args` (e.g. `--api-key K`) go to the gateway only.
    """
    from targets import TARGETS

    opts = dict(options)
    upstream_name = str(opts.pop("upstream", "fastapi_threadpool"))
    upstream_opts = opts.pop("upstream_options", {})
    upstream: TargetProcess | None = None
    if "upstream_url" not in opts:
        info = TARGETS.get(upstream_name)
        if info is None or info.kind not in ("python", "vllm"):
            raise LaunchError(f"{label}: upstream must be a target the harness starts "
                              f"(python or vllm kind), got {upstream_name!r}")
        upstream = start_target(f"{label}.upstream", upstream_name, model=model, device=device,
                                options=upstream_opts,
                                log_path=log_path.with_name(f"{label}.upstream.log"),
                                ready_timeout_s=max(ready_timeout_s, info.ready_timeout_s or 0))
        opts["upstream_url"] = upstream.url
    try:
        proxy = start_target(label, name, model=model, device=device, options=opts,
                             log_path=log_path, ready_timeout_s=ready_timeout_s,
                             extra_args=extra_args)
    except BaseException:
        if upstream is not None:
            upstream.stop(timeout_s=5)
        raise
    proxy.gateway = Upstream(str(opts["upstream_url"]),
                             upstream_name if upstream is not None else None)
    if upstream is not None:
        proxy.companions.append(upstream)
    return proxy
