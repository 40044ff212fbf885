"""`load_engine(spec)`: the one entry point from a model spec to a loaded `ModelEngine` (slowed
when `PATTERNBENCH_INJECT_SLOWDOWN` asks: `targets.model.slowdown`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from targets.model.engine import ModelEngine
from targets.model.hf import HFEngine
from targets.model.sim import SimEngine
from targets.model.slowdown import injected, slowed_tokens
from targets.model.spec import ModelSpec, parse_model_spec
from targets.model.store import materialize


def load_engine(spec: ModelSpec | str, device: str = "auto") -> ModelEngine:
    """Materialize `spec` if needed and load it on `device` (`auto`: CUDA if present, else CPU)."""
    if isinstance(spec, str):
        spec = parse_model_spec(spec)
    folder = materialize(spec)
    engine: SimEngine | HFEngine
    if spec.sim is not None:
        engine = SimEngine(folder, spec.sim, name=spec.text)
    else:
        engine = HFEngine(folder, device=device, name=spec.preset or folder.name)
    factor = injected()
    if factor > 1:
        _slow(engine, factor)
    return engine


def _slow(engine: SimEngine | HFEngine, factor: float) -> None:
    """An injected regression (`targets.model.slowdown`): this engine's own `generate` slowed.
    The engine keeps its type: the batch models and request-level batching check it."""
    generate = engine.generate

    def slowed(*args: Any, **kwargs: Any) -> Iterator[int]:
        return slowed_tokens(generate(*args, **kwargs), factor)

    engine.generate = slowed  # type: ignore[method-assign]  # this instance, for this run
