"""The target kinds that are not a plain `python -m targets` process: the `fastapi_proxy` gateway
(its upstream started first, its pool accounted in /metrics and in the summary), an `external`
server the harness never starts or stops, and `vllm` when .venv-vllm is missing (the run records
it as failed, says how to install it, and goes on)."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from harness.run.launcher import (
    LaunchError,
    TargetProcess,
    Upstream,
    connect_external,
    start_proxy,
    start_target,
)
from harness.run.runner import RunOptions, run_scenario
from harness.scenario.load import parse_scenario
from harness.telemetry.pool import parse_pool_totals

MODEL = "sim:ttft_ms=40,tpot_ms=2,gil=release"


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url + "/v1/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


def metrics(url: str) -> str:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        return cast(bytes, resp.read()).decode()


def gauge(text: str, name: str) -> float:
    line = next(ln for ln in text.splitlines() if ln.startswith(name + " "))
    return float(line.split()[-1])


def tokens_generated(url: str) -> float:
    return gauge(metrics(url), "patternbench_generated_tokens_total")


def concurrent_completions(url: str, n: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    body = {"model": MODEL, "prompt": "hello there", "max_tokens": 4}
    threads = [threading.Thread(target=lambda: results.append(post(url, body))) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.fixture(scope="module")
def sim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TargetProcess]:
    logs = tmp_path_factory.mktemp("logs")
    with start_target("sim", "fastapi_threadpool", model=MODEL, device="cpu",
                      options={"workers": 8}, log_path=logs / "sim.log") as server:
        yield server


@pytest.mark.parametrize("pool_size", [1, 8])
def test_proxy_accounts_pool_wait(sim_server: TargetProcess, tmp_path: Path,
                                  pool_size: int) -> None:
    """Three concurrent requests through a pool of 1 must queue for it; through 8 never."""
    with start_proxy("proxy", "fastapi_proxy", model=MODEL, device="cpu",
                     options={"pool_size": pool_size, "upstream_url": sim_server.url},
                     log_path=tmp_path / "proxy.log") as proxy:
        results = concurrent_completions(proxy.url, 3)
        assert [r["usage"]["completion_tokens"] for r in results] == [4, 4, 4]
        text = metrics(proxy.url)
    totals = parse_pool_totals(text)
    assert totals is not None and totals.count == 3 and totals.pool_size == pool_size
    if pool_size == 1:
        assert totals.wait_s > 0
    else:
        assert totals.wait_s == 0
    assert totals.upstream_s > 0
    assert gauge(text, "patternbench_proxy_pool_in_use") == 0
    assert gauge(text, "patternbench_proxy_pool_waiting") == 0


def test_proxy_stops_the_upstream_it_started(tmp_path: Path) -> None:
    proxy = start_proxy("proxy", "fastapi_proxy", model=MODEL, device="cpu",
                        options={"upstream": "fastapi_threadpool"}, log_path=tmp_path / "p.log")
    (upstream,) = proxy.companions
    assert proxy.gateway == Upstream(upstream.url, "fastapi_threadpool")
    assert post(proxy.url, {"prompt": "hi", "max_tokens": 2})["usage"]["completion_tokens"] == 2
    proxy.stop()
    assert upstream.process is not None and upstream.process.poll() is not None


def test_external_unreachable_is_one_line(tmp_path: Path) -> None:
    from harness.run.launcher import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(LaunchError, match="not reachable") as info:
        connect_external("ext", {"url": url}, tmp_path / "ext.log", timeout_s=0.5)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("options, message", [
    ({}, "url must be"),
    ({"url": "127.0.0.1:8000"}, "url must be"),
    ({"url": "http://x", "api": "embeddings"}, "api must be"),
    ({"url": "http://x", "token": "k"}, "unknown target option token"),
])
def test_external_bad_options(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(LaunchError, match=message):
        connect_external("ext", options, tmp_path / "ext.log", timeout_s=0.5)


SCENARIO: dict[str, Any] = {
    "name": "peers", "model": MODEL, "seed": 3, "timeout_s": 30,
    "workload": {"prompt_tokens": 8, "output_tokens": 4, "stream": True},
    "load": {"kind": "closed", "concurrency": [2], "duration_s": 0.6, "warmup_s": 0.2},
}


def test_run_measures_external_and_records_missing_vllm(sim_server: TargetProcess,
                                                         tmp_path: Path) -> None:
    targets = [
        {"name": "vllm", "options": {"venv": str(tmp_path / "no-venv")}},
        {"name": "external", "label": "ext_chat",
         "options": {"url": sim_server.url + "/v1", "api": "chat"}},  # model: /v1/models
    ]
    scenario = parse_scenario(SCENARIO | {"targets": targets})
    tokens_before = tokens_generated(sim_server.url)
    out = io.StringIO()
    run_dir = run_scenario(scenario, RunOptions(results_root=tmp_path / "results",
                                                reports_root=tmp_path / "reports", out=out))
    summary = json.loads((run_dir / "summary.json").read_text())
    vllm = summary["targets"]["vllm"]
    assert vllm["status"] == "failed" and "make vllm" in vllm["error"]
    assert "make vllm" in out.getvalue() and "Traceback" not in out.getvalue()
    (point,) = summary["points"]
    assert point["target"] == "ext_chat" and point["requests"]["ok"] > 0
    assert point["requests"]["ok"] == point["requests"]["total"]
    # the harness never stopped the external server
    assert sim_server.process is not None and sim_server.process.poll() is None
    samples = (run_dir / "samples" / "ext_chat" / "c2.jsonl").read_text().splitlines()
    assert samples and all(json.loads(s)["status"] == "ok" for s in samples)
    # it generated every token the run measured (4 per request)
    assert tokens_generated(sim_server.url) - tokens_before >= 4 * len(samples)
