"""`load_engine(spec)`: the one entry point from a model spec to a loaded `ModelEngine`."""

from __future__ import annotations

from targets.model.engine import ModelEngine
from targets.model.hf import HFEngine
from targets.model.sim import SimEngine
from targets.model.spec import ModelSpec, parse_model_spec
from targets.model.store import materialize


def load_engine(spec: ModelSpec | str, device: str = "auto") -> ModelEngine:
    """Materialize `spec` if needed and load it on `device` (`auto`: CUDA if present, else CPU)."""
    if isinstance(spec, str):
        spec = parse_model_spec(spec)
    folder = materialize(spec)
    if spec.sim is not None:
        return SimEngine(folder, spec.sim, name=spec.text)
    return HFEngine(folder, device=device, name=spec.preset or folder.name)
