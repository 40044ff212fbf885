"""`load_batch_model(engine)`: the batch model for a loaded model engine, Llama or sim.

The one module that knows both batch models; the scheduler imports neither.
"""

from __future__ import annotations

from targets.batching.scheduler import BatchModel
from targets.batching.sim import SimBatchModel
from targets.model.engine import ModelEngine
from targets.model.hf import HFEngine
from targets.model.sim import SimEngine


def load_batch_model(engine: ModelEngine, max_batch: int = 64, max_len: int | None = None,
                     backend: str = "onednn", prefix_gb: float = 0.0) -> BatchModel:
    """The batch model for `engine`, with `max_batch` sequences of up to `max_len` tokens
    (default and cap: the model's context): a `sim:` engine gives `SimBatchModel`, a
    transformers Llama `LlamaBatchModel` (linear layers through `backend`, `onednn` or `torch`;
    `prefix_gb` GiB of prefix cache, 0: none); anything else is a `ValueError` that names it."""
    if isinstance(engine, SimEngine):
        return SimBatchModel(engine.params, max_batch, max_len)
    if isinstance(engine, HFEngine):
        from targets.batching.llama import LlamaBatchModel  # torch is imported for real models only

        return LlamaBatchModel(engine, max_batch, max_len, backend=backend, prefix_gb=prefix_gb)
    raise ValueError(f"no batching model for {type(engine).__name__}")
