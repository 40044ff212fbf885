"""`HFEngine`: a transformers causal LM generating with a KV cache, one request per call.

Greedy (`temperature` 0) or sampled (targets/model/sampling.py), `ignore_eos` for
exact lengths; fp32 on CPU, bf16 (or fp16) on CUDA.
"""

from __future__ import annotations

import inspect
import random
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from targets.model.engine import GenParams, resolve_device
from targets.model.sampling import is_greedy, row_generator, sample
from targets.model.spec import GPT2_EOS
from targets.model.store import load_tokenizer


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

    def generator(self, params: GenParams) -> random.Random | None:
        """The uniforms of one sampled request (`sampling.row_generator`): seeded by
        `params.seed`, else the process generator; None when greedy. Every batched path draws
        through here, as `generate` does."""
        return row_generator(params)

    def next_token(self, logits: Any, params: GenParams, gen: random.Random | None) -> int:
        """The token to emit after `logits` (one row, `[vocab]`; ids past the tokenizer's
        vocabulary are ignored): the argmax when greedy, else `sampling.sample`'s draw with
        `gen` (from `generator`)."""
        import torch

        logits = logits[..., : self.vocab_limit]
        if gen is None or is_greedy(params):
            return int(torch.argmax(logits, dim=-1).item())
        return sample(logits[None], [params], [gen])[0]

    def generate(
        self, prompt_ids: Sequence[int], params: GenParams, cancel: threading.Event | None = None
    ) -> Iterator[int]:
        import torch

        gen = self.generator(params)
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
