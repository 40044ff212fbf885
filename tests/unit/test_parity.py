"""The parity check's reading and table (`harness.run.parity`): each client's own result file, as
that client wrote it against fastapi_batching (fixtures/parity: vLLM 0.32 `bench serve`
--save-result, GuideLLM 0.8.1's benchmarks JSON cut to the metrics read, AIPerf 0.13's
profile_export_aiperf.json), read into the same metrics; the table's medians, spreads and
patternbench's difference from the others' median."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.run.parity.check import ParityRecord, difference, spreads, table_markdown
from harness.run.parity.clients import AIPERF, CLIENTS, GUIDELLM, VLLM, Client
from harness.run.parity.load import METRICS, Leg, ParityLoad

FIXTURES = Path(__file__).parent / "fixtures" / "parity"
LOAD = ParityLoad(url="http://127.0.0.1:8011", model="tiny", tokenizer="tiny", rate_rps=2.0,
                  requests=10, prompt_tokens=32, output_tokens=16, temperature=0.0, seed=0,
                  client_cpus=None)


def read(client: Client, tmp_path: Path) -> tuple[dict[str, float | None], int, int]:
    """`client`'s fixture put where the client writes it, then read as the check reads it."""
    where = {"vllm": "result.json", "guidellm": "result.json",
             "aiperf": "out/profile_export_aiperf.json"}[client.name]
    (tmp_path / where).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / f"{client.name}.json", tmp_path / where)
    assert client.read is not None
    return client.read(tmp_path)


def test_vllm_bench_result_reads_its_median_and_p99_keys(tmp_path: Path) -> None:
    values, completed, failed = read(VLLM, tmp_path)
    assert (completed, failed) == (10, 0)
    assert values["output_tok_s"] == pytest.approx(30.1427, rel=1e-4)
    assert values["req_s"] == pytest.approx(1.88392, rel=1e-4)
    assert values["ttft_p50_ms"] == pytest.approx(41.196, rel=1e-4)
    assert values["ttft_p99_ms"] == pytest.approx(95.663, rel=1e-4)
    assert values["tpot_p50_ms"] == pytest.approx(20.639, rel=1e-4)
    assert values["itl_p50_ms"] == pytest.approx(21.631, rel=1e-4)
    assert values["e2e_p50_ms"] == pytest.approx(344.92, rel=1e-4)


def test_guidellm_reads_successful_requests_and_seconds_become_ms(tmp_path: Path) -> None:
    values, completed, failed = read(GUIDELLM, tmp_path)
    assert (completed, failed) == (10, 0)
    assert values["output_tok_s"] == pytest.approx(80.402, rel=1e-4)
    assert values["ttft_p50_ms"] == pytest.approx(97.350, rel=1e-4)
    assert values["e2e_p50_ms"] == pytest.approx(1457.05, rel=1e-4)  # request_latency is in s
    assert values["itl_p50_ms"] is None  # GuideLLM has no pooled ITL: not made up


def test_aiperf_reads_its_metric_tags(tmp_path: Path) -> None:
    values, completed, failed = read(AIPERF, tmp_path)
    assert (completed, failed) == (10, 0)
    assert values["output_tok_s"] == pytest.approx(30.1978, rel=1e-4)
    assert values["ttft_p50_ms"] == pytest.approx(14.1915, rel=1e-4)
    assert values["ttft_p99_ms"] == pytest.approx(27.3936, rel=1e-4)
    assert values["tpot_p50_ms"] == pytest.approx(8.69022, rel=1e-4)
    assert values["itl_p50_ms"] == pytest.approx(7.85208, rel=1e-4)
    assert values["e2e_p50_ms"] == pytest.approx(147.998, rel=1e-4)


def test_a_client_without_its_result_file_raises_a_readable_error(tmp_path: Path) -> None:
    assert VLLM.read is not None
    with pytest.raises(OSError):
        VLLM.read(tmp_path)


def test_every_client_names_every_metric() -> None:
    for client in CLIENTS.values():
        assert set(client.names) == {m.key for m in METRICS}, client.name


def test_a_missing_venv_says_which_make_target_installs_it(tmp_path: Path) -> None:
    client = Client("nothere", lambda: tmp_path / "no-venv", "make nothere", {}, None, None)
    assert client.missing() == f"nothere: not installed (make nothere creates {tmp_path}/no-venv)"


def leg(client: str, round_: int, tok_s: float | None, ttft: float, error: str | None = None,
        ) -> Leg:
    values = {"output_tok_s": tok_s, "ttft_p50_ms": ttft}
    return Leg(client=client, round=round_, values=values if error is None else {},
               completed=10, failed=0, wall_s=12.0, folder=f"r{round_}-{client}", error=error)


def record(*legs: Leg) -> ParityRecord:
    return ParityRecord(1, LOAD, ("builtin", "vllm", "aiperf"), 3, legs,
                        {"guidellm": "guidellm: not installed (make guidellm creates x)"})


def test_medians_spreads_and_the_difference_from_the_others_median() -> None:
    rec = record(leg("builtin", 1, 100.0, 20.0), leg("vllm", 1, 90.0, 24.0),
                 leg("aiperf", 1, 96.0, 30.0),
                 leg("builtin", 2, 104.0, 22.0), leg("vllm", 2, 94.0, 26.0),
                 leg("aiperf", 2, 98.0, 31.0),
                 leg("builtin", 3, 102.0, 21.0), leg("vllm", 3, None, 25.0),
                 leg("aiperf", 3, 0.0, 0.0, error="aiperf left no result (exit 1)"))
    s = spreads(rec)
    assert s["builtin"]["output_tok_s"].median == 102.0
    assert s["builtin"]["output_tok_s"].span == (100.0, 104.0)
    assert s["vllm"]["output_tok_s"].values == [90.0, 94.0]  # None is not a value
    assert s["aiperf"]["ttft_p50_ms"].values == [30.0, 31.0]  # the failed leg is left out
    # others' medians: vllm 92, aiperf 97 → their median 94.5; builtin 102
    assert difference(s, "output_tok_s") == pytest.approx(102.0 / 94.5 - 1)
    assert difference(s, "itl_p50_ms") is None
    table = table_markdown(rec)
    assert "| output tok/s (tok/s) | 102 [100–104] | 92 [90–94] | 97 [96–98] | +7.9% |" in table
    assert "- round 3, aiperf: aiperf left no result (exit 1)" in table
    assert "- not run: guidellm: not installed" in table
    assert "| ITL p50 | `itl_ms.p50` | `median_itl_ms` | `inter_chunk_latency.p50` |" in table


@pytest.mark.parametrize(("args", "said"), [
    (["--clients", "builtin,wrk"], "unknown client wrk; known: builtin, vllm, guidellm, aiperf"),
    (["--rate", "0"], "--rate must be > 0"),
    (["--requests", "0"], "--requests and --rounds ≥ 1"),
])
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], said: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli.main import main

    assert main(["parity", "http://127.0.0.1:9", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("patternbench parity: ") and said in err and "\n" not in err
