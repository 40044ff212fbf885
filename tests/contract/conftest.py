"""The contract suite runs against every local target in the registry, read at collection time.

A target joins by being in `targets.TARGETS` with `local=True`. `SKIP_TARGETS` lists the ones the
suite cannot judge (with the reason); `SKIPS` lists single checks a target is excused from, with
the reason — usually because the check's failure IS the pattern's documented pitfall, and for
`vllm` (the real vLLM server, marked `vllm`) because it is vLLM's own behaviour, not our serving
layer's. A test parametrizes over `target_params()`; a check it may be excused from calls
`skip_unless_supported` (the whole test) or `supports` (one part of it).

One fleet — every target, one process each, on the real `tiny` model — is started once for the
whole suite, in parallel: starting Python processes that import torch dominates its wall time.
A test waits only for its own target, so vLLM's minute of start-up overlaps the other targets'
tests; without `.venv-vllm` its tests skip, saying how to install it, and `-m "not vllm"` starts
no vLLM at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.run.launcher import LaunchError, TargetProcess, start_proxy, start_target
from targets import TARGETS
from targets.framework_venv import install_error as framework_install_error
from targets.llamacpp import READY_TIMEOUT_S as LLAMACPP_READY_S
from targets.llamacpp import install_error as llamacpp_missing
from targets.vllm import READY_TIMEOUT_S, install_error

API_KEY = "contract-key"

SKIP_TARGETS: dict[str, str] = {
    "echo": "a calibration yardstick with no model and no request validation, not a pattern",
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
    "vllm": {
        "overload": "vLLM's scheduler queues every request it is sent: it has no admission "
                    "limit, so never a 503 with Retry-After",
        "disconnect": "vLLM counts its tokens and aborts in its own vllm:* metrics, not "
                      "patternbench_*: test_vllm.py checks the abort with those",
        "drain": "on SIGTERM vLLM refuses new connections but cuts the stream in flight (no "
                 "more tokens, no [DONE]) instead of finishing it",
        "sse_framing": "vLLM puts finish_reason on the last token's chunk (no closing chunk of "
                       "its own) and sends no Cache-Control/X-Accel-Buffering headers: a valid "
                       "OpenAI stream, framed its way",
        "limits": "vLLM answers a prompt over its context with 400 (param input_tokens), not "
                  "413, and has neither our max_tokens cap nor our 1 MiB body limit; "
                  "test_vllm.py checks its 400s",
        "framework_errors": "vLLM answers what FastAPI refuses before its OpenAI handlers (an "
                            "unknown route, a wrong method, a body that is not UTF-8) with "
                            "FastAPI's {\"detail\": ...}, not an OpenAI error object",
        "chat_content_required": "vLLM's chat schema makes a message's content optional: a "
                                 "message without it is answered 200, not 400",
        "api_key_error": "vLLM's 401 body is {\"error\": \"Unauthorized\"}, not an OpenAI "
                         "error object with code invalid_api_key",
        "patternbench_errors": "vLLM answers malformed requests with its own statuses and error "
                               "shapes (e.g. code 404 as a number, NaN accepted): only checked "
                               "never to be a 5xx",
        "patternbench_metrics": "vLLM exports its own vllm:* metrics (the harness's telemetry "
                                "reads those), not our patternbench_* gauges and counters",
        "unserved_options": "vLLM serves logprobs, echo and penalties itself: it has no need "
                            "to refuse them",
        "text_only_content": "vLLM refuses an image part with a 400 of its own wording ('tiny "
                             "is not a multimodal model'), naming the model, not the part",
    },
}

# llama.cpp's llama-server (`make llamacpp`, marker `llamacpp`): what it answers its own way.
SKIPS["llamacpp"] = {
    "overload": "llama-server queues every request that finds no free slot (requests_deferred): "
                "it has no admission limit, so never a 503 with Retry-After",
    "disconnect": "llama-server counts its slots and tokens in its own llamacpp:* metrics, not "
                  "patternbench_*: test_llamacpp.py checks the slot is freed with those",
    "drain": "on SIGTERM llama-server stops generating at once: the streams in flight get no "
             "more tokens and no [DONE] (measured: 8 of 8 cut, the process gone 30 s later)",
    "drain_refuses_new": "checked only with the drain above",
    "sse_framing": "llama-server sends no Cache-Control/X-Accel-Buffering headers and, with "
                   "include_usage, puts the usage on its closing finish_reason chunk (no "
                   "usage-only chunk with empty choices) beside an empty closing delta: a valid "
                   "OpenAI stream, framed its way",
    "limits": "llama-server answers a prompt over a slot's context with 400 "
              "(exceed_context_size_error), not 413, and has neither our max_tokens cap nor our "
              "1 MiB body limit",
    "framework_errors": "a wrong method is 404 (not 405), and its errors carry no param",
    "bad_input_400": "a body that is not JSON is a 500 (json parse_error), not a 400",
    "api_key_error": "llama-server's 401 has code 401 (a number) and type "
                     "authentication_error, not code invalid_api_key",
    "patternbench_errors": "llama-server answers malformed requests with its own statuses and "
                           "error shapes (no param): only checked never to be a 5xx",
    "patternbench_metrics": "llama-server exports its own llamacpp:* metrics (the harness's "
                            "telemetry reads those), not our patternbench_* gauges and counters",
    "bearer_only": "llama-server also takes the key without its \"Bearer \" prefix "
                   "(Authorization: KEY is let in)",
    "open_metrics": "llama-server guards /metrics with its --api-key (only /health is public)",
    "unserved_options": "llama-server serves logprobs, echo and penalties itself: it has no need "
                        "to refuse them",
    "text_only_content": "an image part is a 500 (\"image input is not supported\"), not a 400",
    "continuous_usage_stats": "llama-server ignores stream_options.continuous_usage_stats: "
                              "usage comes only on the last chunk",
}
LLAMACPP_OPTIONS = {"parallel": 4, "threads": 1}  # 4 slots: MAX_CONCURRENCY below
KIND_MARKS: dict[str, list[pytest.MarkDecorator]] = {
    "llamacpp": [pytest.mark.llamacpp, pytest.mark.timeout(LLAMACPP_READY_S + 300)],
}
# The frameworks that package our model (issue #24): each from a venv of its own, its tests
# marked with its name (`ray`, `litserve`) and skipped, saying how to install it, without it.
SKIPS.update({
    "litserve": {
        "disconnect": "LitServe 0.2.19 tells a worker nothing when a client leaves: the row "
                      "keeps decoding to its max_tokens inside its batch while the front end "
                      "drops its tokens, and patternbench_generated_tokens_total (kept by the "
                      "front end) sees only the tokens it received, so this check cannot see "
                      "the waste",
    },
})
FRAMEWORK_MARKS = {"ray_serve": pytest.mark.ray, "litserve": pytest.mark.litserve}

STALLS_HEALTH = {"fastapi_blocking"}  # /health waits for the running generation: the point
VLLM_READY_S = max(READY_TIMEOUT_S, 600.0)  # vLLM's start-up: ~65 s on 2 idle cores, minutes busy


def contract_targets() -> list[str]:
    return [name for name, info in TARGETS.items() if info.local and name not in SKIP_TARGETS]


def target_params(*names: str) -> list[Any]:
    """`names` (default: every contract target) as `target` parameters; vLLM's is marked `vllm`
    and may wait out vLLM's start-up."""
    vllm_marks = [pytest.mark.vllm, pytest.mark.timeout(VLLM_READY_S + 300)]
    marks: dict[str, list[pytest.MarkDecorator]] = {
        name: [mark] for name, mark in FRAMEWORK_MARKS.items()}
    by_kind: dict[str, list[pytest.MarkDecorator]] = {"vllm": vllm_marks, **KIND_MARKS}
    return [pytest.param(name, id=name,
                         marks=marks.get(name) or by_kind.get(TARGETS[name].kind, []))
            for name in names or contract_targets()]


def supports(target: str, check: str) -> bool:
    """False when `target` is excused from `check` (listed in `SKIPS`)."""
    return check not in SKIPS.get(target, {})


def skip_unless_supported(target: str, check: str) -> None:
    if not supports(target, check):
        pytest.skip(f"{target} skips {check}: {SKIPS[target][check]}")


MODEL = "tiny"  # the real model: greedy equality needs it, and it streams fast enough
MAX_CONCURRENCY = 4  # with max_queue 0: the 5th concurrent request must get a 503
MAX_TOKENS_CAP = 1024  # below the tiny model's context (2048), so the cap is checked on its own


@dataclass
class Fleet:
    """Started targets by name; a target that failed to start keeps its error instead, and one
    that is not installed (vLLM without `.venv-vllm`) the reason its tests skip.

    `get` waits for its target's start (each is submitted to `starting` at once), and restarts a
    target whose process has exited (the drain test stops them), so no test depends on running
    before or after another one.
    """

    log_dir: Path
    servers: dict[str, TargetProcess] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    starting: dict[str, Future[None]] = field(default_factory=dict)

    def auth(self, name: str) -> dict[str, str]:
        """The header every target (a gateway too, not its upstream) is started to require."""
        return {"Authorization": f"Bearer {API_KEY}"}

    def start(self, name: str) -> None:
        if TARGETS[name].kind == "vllm" and (problem := install_error()) is not None:
            self.missing[name] = problem
            return
        if TARGETS[name].kind == "llamacpp" and (problem := llamacpp_missing()) is not None:
            self.missing[name] = problem
            return
        if TARGETS[name].kind == "framework" and (problem := framework_install_error(name)):
            self.missing[name] = problem
            return
        try:
            self.servers[name] = start_one(name, self.log_dir)
        except LaunchError as exc:
            self.errors[name] = str(exc)

    def get(self, name: str) -> TargetProcess:
        self.starting[name].result()
        if name in self.missing:
            pytest.skip(self.missing[name])
        server = self.servers.get(name)
        if server is not None and server.process is not None and server.process.poll() is not None:
            server.stop(timeout_s=5)  # its companions (a proxy's upstream) too
            self.start(name)
        if name in self.errors:
            pytest.fail(f"{name} did not start: {self.errors[name]}")
        return self.servers[name]


def start_one(name: str, log_dir: Path, model: str = MODEL) -> TargetProcess:
    """Start target `name` on `model` the way the contract suite runs it: requiring `API_KEY`,
    at most `MAX_CONCURRENCY` streams, no queue, one torch thread."""
    info = TARGETS[name]
    log_path = log_dir / f"{name}.log"
    key = ["--api-key", API_KEY]
    options: dict[str, Any] = {"max_concurrency": MAX_CONCURRENCY, "max_queue": 0,
                               "max_tokens_cap": MAX_TOKENS_CAP}
    if info.kind == "proxy":  # the key is the gateway's own; its upstream takes none
        # An upstream running every admitted stream at once, so the gateway is what is tested.
        options["upstream_options"] = {"max_tokens_cap": MAX_TOKENS_CAP,
                                       "workers": MAX_CONCURRENCY}
        return start_proxy(name, name, model=model, device="cpu", options=options,
                           log_path=log_path, ready_timeout_s=240, extra_args=key)
    if info.kind == "vllm":  # vLLM's own server: none of our options, its own thread defaults
        return start_target(name, name, model=model, device="cpu", options={}, log_path=log_path,
                            ready_timeout_s=VLLM_READY_S, extra_args=key)
    if info.kind == "llamacpp":  # its own server: slots for MAX_CONCURRENCY, one thread
        return start_target(name, name, model=model, device="cpu", options=LLAMACPP_OPTIONS,
                            log_path=log_path, ready_timeout_s=LLAMACPP_READY_S, extra_args=key)
    # One torch thread each: a fleet of servers on few cores must not oversubscribe them.
    return start_target(name, name, model=model, device="cpu", options=options,
                        log_path=log_path, ready_timeout_s=240,
                        extra_args=["--torch-threads", "1", *key])


def selected_targets(session: pytest.Session) -> list[str]:
    """The targets the selected tests use (`-k proxy` starts only the proxy)."""
    here = Path(__file__).parent
    used = {item.callspec.params.get("target") for item in session.items
            if isinstance(item, pytest.Function) and hasattr(item, "callspec")
            and item.path.is_relative_to(here)}
    return [name for name in contract_targets() if name in used]


@pytest.fixture(scope="package")
def fleet(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """Every selected contract target, started once for the contract suite, in parallel, and
    stopped when it ends: the tests after it do not share the machine with ~9 idle servers."""
    started = Fleet(log_dir=tmp_path_factory.mktemp("contract-logs"))
    names = selected_targets(request.session)
    pool = ThreadPoolExecutor(max_workers=len(names) or 1)
    started.starting = {name: pool.submit(started.start, name) for name in names}
    try:
        yield started
    finally:
        pool.shutdown(wait=True)  # a start still under way ends first, then is stopped
        with ThreadPoolExecutor(max_workers=len(started.servers) or 1) as stopping:
            list(stopping.map(lambda server: server.stop(timeout_s=20),
                              started.servers.values()))
