"""`load_batch_model(engine)`: the batch model for a loaded model engine, Llama or sim.

The one module that knows both batch models; the scheduler imports neither.
"""

from __future__ import annotations

from targets.batching.scheduler import BatchModel
from targets.batching.sim import SimBatchModel
from targets.model.engine import ModelEngine
from targets.model.hf import HFEngine
from targets.model.load import computes_on_cpu
from targets.model.sim import SimEngine
from targets.model.slowdown import injected, slowed_call


def load_batch_model(engine: ModelEngine, max_batch: int = 64, max_len: int | None = None,
                     backend: str = "onednn", prefix_gb: float = 0.0) -> BatchModel:
    """The batch model for `engine`, with `max_batch` sequences of up to `max_len` tokens
    (default and cap: the model's context): a `sim:` engine gives `SimBatchModel`, a
    transformers Llama `LlamaBatchModel` (linear layers through `backend`, `onednn` or `torch`;
    `prefix_gb` GiB of prefix cache, 0: none); anything else is a `ValueError` that names it."""
    model: BatchModel
    if isinstance(engine, SimEngine):
        model = SimBatchModel(engine.params, max_batch, max_len)
    elif isinstance(engine, HFEngine):
        from targets.batching.llama import LlamaBatchModel  # torch is imported for real models only

        model = LlamaBatchModel(engine, max_batch, max_len, backend=backend, prefix_gb=prefix_gb)
    else:
        raise ValueError(f"no batching model for {type(engine).__name__}")
    factor = injected()
    if factor > 1:  # an injected regression: every step slowed (targets.model.slowdown)
        model.step = slowed_call(model.step, factor,  # type: ignore[method-assign]  # this run
                                 computes_on_cpu(engine))
    return model
