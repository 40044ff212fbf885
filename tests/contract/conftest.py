"""The contract suite runs against every local target in the registry, read at collection time.

A target joins by being in `targets.TARGETS` with `local=True`. `SKIP_TARGETS` lists the ones the
suite cannot judge (with the reason); `SKIPS` lists single checks a target is excused from, with
the reason — usually because the check's failure IS the pattern's documented pitfall.

One fleet — every target, one process each, on the real `tiny` model — is started once for the
whole suite, in parallel: starting Python processes that import torch dominates its wall time.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.launcher import LaunchError, TargetProcess, start_proxy, start_target
from targets import TARGETS

API_KEY = "contract-key"

SKIP_TARGETS: dict[str, str] = {
    "echo": "a calibration yardstick with no model and no request validation, not a pattern",
    "vllm": "the real vLLM server in .venv-vllm: its behaviour is vLLM's, not our serving layer",
}

SKIPS: dict[str, dict[str, str]] = {
    "fastapi_blocking": {
        "overload": "a held stream blocks the event loop, so the next request is read only after "
                    "it ends: no 503 can be sent (the pattern's documented pitfall)",
        "disconnect": "the blocked loop cannot see the client leave until the generation ends "
                      "(documented pitfall)",
        "drain_refuses_new": "the listening socket closes only once the loop is free, after the "
                             "running stream (documented pitfall)",
    },
}

STALLS_HEALTH = {"fastapi_blocking"}  # /health waits for the running generation: the point


def contract_targets() -> list[str]:
    return [name for name, info in TARGETS.items()
            if info.local and name not in SKIP_TARGETS and info.kind != "vllm"]


def skip_unless_supported(target: str, check: str) -> None:
    reason = SKIPS.get(target, {}).get(check)
    if reason:
        pytest.skip(f"{target} skips {check}: {reason}")


MODEL = "tiny"  # the real model: greedy equality needs it, and it streams fast enough
MAX_CONCURRENCY = 4  # with max_queue 0: the 5th concurrent request must get a 503
MAX_TOKENS_CAP = 1024  # below the tiny model's context (2048), so the cap is checked on its own


@dataclass
class Fleet:
    """Started targets by name; a target that failed to start keeps its error instead.

    `get` restarts a target whose process has exited (the drain test stops them), so no test
    depends on running before or after another one.
    """

    log_dir: Path
    servers: dict[str, TargetProcess] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def api_key(self, name: str) -> str | None:
        return None if TARGETS[name].kind == "proxy" else API_KEY

    def auth(self, name: str) -> dict[str, str]:
        key = self.api_key(name)
        return {"Authorization": f"Bearer {key}"} if key else {}

    def start(self, name: str) -> None:
        try:
            self.servers[name] = _start(name, self.log_dir, self.api_key(name))
        except LaunchError as exc:
            self.errors[name] = str(exc)

    def get(self, name: str) -> TargetProcess:
        server = self.servers.get(name)
        if server is not None and server.process is not None and server.process.poll() is not None:
            server.stop(timeout_s=5)  # its companions (a proxy's upstream) too
            self.start(name)
        if name in self.errors:
            pytest.fail(f"{name} did not start: {self.errors[name]}")
        return self.servers[name]


def _start(name: str, log_dir: Path, api_key: str | None) -> TargetProcess:
    info = TARGETS[name]
    log_path = log_dir / f"{name}.log"
    options: dict[str, Any] = {"max_concurrency": MAX_CONCURRENCY, "max_queue": 0,
                               "max_tokens_cap": MAX_TOKENS_CAP}
    if info.kind == "proxy":  # the gateway takes no flags through start_proxy: no API key
        # An upstream running every admitted stream at once, so the gateway is what is tested.
        options["upstream_options"] = {"max_tokens_cap": MAX_TOKENS_CAP,
                                       "workers": MAX_CONCURRENCY}
        return start_proxy(name, name, model=MODEL, device="cpu", options=options,
                           log_path=log_path, ready_timeout_s=240)
    # One torch thread each: a fleet of servers on few cores must not oversubscribe them.
    extra = ["--torch-threads", "1"]
    if api_key:
        extra += ["--api-key", api_key]
    return start_target(name, name, model=MODEL, device="cpu", options=options,
                        log_path=log_path, ready_timeout_s=240, extra_args=extra)


def selected_targets(session: pytest.Session) -> list[str]:
    """The targets the selected tests use (`-k proxy` starts only the proxy)."""
    used = {item.callspec.params.get("target") for item in session.items
            if isinstance(item, pytest.Function) and hasattr(item, "callspec")}
    return [name for name in contract_targets() if name in used]


@pytest.fixture(scope="session")
def fleet(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Every selected contract target, started once for the whole suite, in parallel."""
    started = Fleet(log_dir=tmp_path_factory.mktemp("contract-logs"))
    names = selected_targets(request.session)
    with ThreadPoolExecutor(max_workers=len(names) or 1) as pool:
        list(pool.map(started.start, names))
    try:
        yield started
    finally:
        with ThreadPoolExecutor(max_workers=len(started.servers) or 1) as pool:
            list(pool.map(lambda server: server.stop(timeout_s=20), started.servers.values()))
