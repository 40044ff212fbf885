"""The one way tests build a `LoadJob`: a real job, as `harness.run.point.load_job` builds it for a
run, with a real `PromptFactory` on the GPT-2 tokenizer every target model uses.

    job = job_for(LoadPoint("c2", "closed", 5, 0, concurrency=2), url=target.url,
                  client=ClientSettings(retry_refused=3), clock=clock)

Defaults: the load starts now on `clock` (a fresh one unless given), seed 1, the scenario's
default `[client]`, no fault, a model named "m", a URL nothing listens on.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from harness.drivers.job import LoadJob
from harness.samples import Clock
from harness.scenario.client import ClientSettings
from harness.scenario.fault import Fault
from harness.scenario.types import LoadPoint, Workload
from harness.workload.prompts import PromptFactory

NOWHERE = "http://127.0.0.1:1"  # nothing listens there: a job whose driver never sends


@functools.cache
def gpt2_tokenizer() -> Any:
    """The tokenizer of every target model (built once into ~/.cache/patternbench)."""
    from targets.model.store import load_tokenizer, materialize

    return load_tokenizer(materialize("sim:ttft_ms=1,tpot_ms=1"))


def job_for(point: LoadPoint, *, workload: Workload | None = None, url: str = NOWHERE,
            client: ClientSettings | None = None, fault: Fault | None = None,
            clock: Clock | None = None, point_start: float | None = None, seed: int = 1,
            timeout_s: float = 300.0, prompts: PromptFactory | None = None,
            tokenizer: Any = None, work_dir: Path | None = None, target: str = "t") -> LoadJob:
    """A job for `point` against `url`. `prompts`: the run's factory (a point takes the next
    block of its indices, as in a run); default a fresh one for `workload` and `seed` on
    `tokenizer` (default the GPT-2 one). `point_start`: run-clock time the load starts (default
    now)."""
    clock = clock or Clock()
    if prompts is None:
        prompts = PromptFactory(tokenizer or gpt2_tokenizer(), workload or Workload(), seed)
    return LoadJob(target=target, base_url=url, model_name="m", point=point,
                   workload=workload or prompts.workload, prompts=prompts, clock=clock,
                   point_start=clock.now() if point_start is None else point_start, seed=seed,
                   timeout_s=timeout_s, client=client or ClientSettings(), fault=fault,
                   work_dir=work_dir, prompt_offset=prompts.next_block())
