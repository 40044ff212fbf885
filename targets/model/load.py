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


def computes_on_cpu(engine: ModelEngine) -> bool:
    """Whether the engine's work is CPU time (a model on the CPU, a `sim:` model holding the
    GIL) rather than a wait on a device (a GPU, a sleeping `sim:` model)."""
    if isinstance(engine, SimEngine):
        return engine.params.gil == "hold"
    return engine.device == "cpu"


def _slow(engine: SimEngine | HFEngine, factor: float) -> None:
    """An injected regression (`targets.model.slowdown`): this engine's own `generate` slowed.
    The engine keeps its type: the batch models and request-level batching check it."""
    generate = engine.generate

    spin = computes_on_cpu(engine)

    def slowed(*args: Any, **kwargs: Any) -> Iterator[int]:
        return slowed_tokens(generate(*args, **kwargs), factor, spin)

    engine.generate = slowed  # type: ignore[method-assign]  # this instance, for this run
