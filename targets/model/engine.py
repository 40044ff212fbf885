"""What a target needs from a model, whichever engine runs it.

`ModelEngine.generate(prompt_ids, params, cancel)` is blocking and yields output token ids one at
a time; `GenParams` are one request's sampling parameters; `Tokenizer` is the part of a
transformers tokenizer the API layer uses; `resolve_device` names the device an engine runs on
(the harness records the same answer in a run's manifest). `targets.model.load.load_engine`
returns a `ModelEngine` for any spec.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class GenParams:
    """Sampling parameters of one request: at most `max_tokens` output tokens; `temperature` 0
    is greedy, above 0 samples within the `top_p` nucleus, the `top_k` most likely tokens (0: all)
    and the `min_p` floor (0: none), drawn from a generator seeded by `seed` (the process's when
    None; see targets/model/sampling.py); `ignore_eos` generates past EOS, for exact lengths."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    ignore_eos: bool = False
    top_k: int = 0
    min_p: float = 0.0


class Tokenizer(Protocol):
    """The part of a transformers tokenizer the API layer uses: text ↔ token ids."""

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...
    def decode(self, ids: Sequence[int], skip_special_tokens: bool = ...) -> str: ...


def resolve_device(device: str = "auto") -> str:
    """`device` as torch names it: `auto` is `cuda` when torch is installed and sees a GPU, else
    `cpu`; any other name is returned as given. Imports torch only for `auto`."""
    if device != "auto":
        return device
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


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
