"""The model side of continuous batching: one forward pass over a mixed batch, on a slot KV cache.

`LlamaBatchModel.step(decode, chunks)` runs every token of one engine step as one flat batch
through a Llama-architecture model: one new token for each decoding sequence plus a chunk of
prompt for each joining one. Linear layers see all N tokens at once (one GEMM each); attention is
done per kind: the decoding rows attend together over their cache slots with a per-row length
mask, each prompt chunk attends causally over its own slot. Only rows that produce a token go
through the last layer's attention and MLP and reach the LM head (a prompt's other rows need only
their keys and values there), and one `.tolist()` per step brings the greedy tokens back.

The KV cache is preallocated per layer as [max_batch, kv_heads, max_len, head_dim] with
`torch.empty` (the OS commits pages only as they are written; a position that was never written
is zeroed before a decode call reads it). Decoding sequences live in slots
0..B-1, so the batch's keys are one strided view and nothing is gathered per step: when a sequence
leaves, the one that takes its place in the decode list moves into its slot (one copy of its
cached tokens).

It reuses the loaded transformers model's weights and repeats its math op for op (RMSNorm in
float32, rotary tables from the model's own `inv_freq`, SDPA), so greedy output equals
`HFEngine.generate`. On CPU, linear layers run through oneDNN with prepacked weights when torch
offers it: on this AMD CPU that is 2-3x faster than MKL's sgemm, which `nn.Linear` uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from targets.model import HFEngine

if TYPE_CHECKING:
    from targets.engine import Sequence

Linear = Callable[[torch.Tensor], torch.Tensor]
SUPPORTED = ("llama",)
STATIC_ROPE = ("default", "linear", "llama3", "yarn")
ARGMAX_BLOCK = 1024  # logit columns per block of the two-level argmax


def _onednn_linear(weight: torch.Tensor, bias: torch.Tensor | None) -> Linear | None:
    """A oneDNN linear with a prepacked weight, or None where this torch lacks it or disagrees."""
    try:
        ops: Any = torch.ops.mkldnn
        packed = ops._reorder_linear_weight(weight, 32)  # 32: a batch-size hint, any M works
        probe = torch.randn(3, weight.shape[1], dtype=weight.dtype)
        if not torch.allclose(ops._linear_pointwise(probe, packed, bias, "none", [], ""),
                              F.linear(probe, weight, bias), atol=1e-4, rtol=1e-4):
            return None
    except (AttributeError, RuntimeError):
        return None
    op = ops._linear_pointwise
    return lambda x: op(x, packed, bias, "none", [], "")


def make_linear(weight: torch.Tensor, bias: torch.Tensor | None, backend: str) -> Linear:
    """`x @ weight.T + bias` through `backend`: `onednn` (CPU float32, falls back) or `torch`."""
    if backend == "onednn" and weight.device.type == "cpu" and weight.dtype == torch.float32:
        fast = _onednn_linear(weight, bias)
        if fast is not None:
            return fast
    return lambda x: F.linear(x, weight, bias)


def _cat_bias(*biases: torch.Tensor | None) -> torch.Tensor | None:
    return None if biases[0] is None else torch.cat([b for b in biases if b is not None])


class _Layer:
    """One decoder layer's weights, with q/k/v and gate/up fused into one matrix each."""

    def __init__(self, layer: Any, backend: str) -> None:
        att, mlp = layer.self_attn, layer.mlp
        self.ln1 = layer.input_layernorm.weight
        self.ln2 = layer.post_attention_layernorm.weight
        qkv = torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight])
        self.qkv = make_linear(qkv, _cat_bias(att.q_proj.bias, att.k_proj.bias, att.v_proj.bias),
                               backend)
        self.o = make_linear(att.o_proj.weight, att.o_proj.bias, backend)
        gate_up = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])
        self.gate_up = make_linear(gate_up, _cat_bias(mlp.gate_proj.bias, mlp.up_proj.bias),
                                   backend)
        self.down = make_linear(mlp.down_proj.weight, mlp.down_proj.bias, backend)


class LlamaBatchModel:
    """A Llama-architecture transformers model stepped as a continuous batch (see module doc).

    `max_batch`: cache slots (sequences at once); `max_len`: tokens per slot, prompt included
    (default: the model's context); `backend`: `onednn` or `torch` for the linear layers.
    """

    def __init__(self, engine: HFEngine, max_batch: int, max_len: int | None = None,
                 backend: str = "onednn") -> None:
        model, cfg = engine.model, engine.model.config
        rope = getattr(model.model.rotary_emb, "rope_type", "default")
        if cfg.model_type not in SUPPORTED or rope not in STATIC_ROPE:
            raise ValueError(f"the batching engine runs Llama-architecture models with static "
                             f"rotary embeddings; this one is {cfg.model_type!r} ({rope!r} rope)")
        self.engine = engine
        self.max_batch = max_batch
        self.max_len = min(max_len or engine.max_context, engine.max_context)
        self.device = torch.device(engine.device)
        self.dtype = model.dtype
        self.heads = cfg.num_attention_heads
        self.kv_heads = cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // self.heads
        self.inter = cfg.intermediate_size
        self.eps = cfg.rms_norm_eps
        self.scale = self.head_dim**-0.5
        self.gqa = {"enable_gqa": True} if self.kv_heads != self.heads else {}
        self.eos = engine.eos_token_id
        self.vocab_limit = engine.vocab_limit
        with torch.inference_mode():
            self.embed = model.model.embed_tokens.weight
            self.layers = [_Layer(layer, backend) for layer in model.model.layers]
            self.norm = model.model.norm.weight
            self.lm_head = self._padded_lm_head(model.lm_head, backend)
            rot = model.model.rotary_emb  # the same float32 math as LlamaRotaryEmbedding.forward
            freqs = torch.arange(self.max_len, device=self.device, dtype=torch.float)[:, None]
            freqs = freqs * rot.inv_freq.to(device=self.device, dtype=torch.float)
            emb = torch.cat((freqs, freqs), dim=-1)
            self.cos = (emb.cos() * rot.attention_scaling).to(self.dtype)
            sin = emb.sin() * rot.attention_scaling
            half = sin.shape[-1] // 2  # rotate_half(x) = cat(-x2, x1): the sign goes in the table
            self.sin = torch.cat((-sin[:, :half], sin[:, half:]), dim=-1).to(self.dtype)
            shape = (max_batch, self.kv_heads, self.max_len, self.head_dim)
            self._check_cache_fits(2 * len(self.layers) * math.prod(shape) * self.dtype.itemsize)
            self.kcache = [torch.empty(shape, dtype=self.dtype, device=self.device)
                           for _ in self.layers]
            self.vcache = [torch.empty(shape, dtype=self.dtype, device=self.device)
                           for _ in self.layers]
            self.arange = torch.arange(max(self.max_len, max_batch), device=self.device)
        self.owner: list[Sequence | None] = [None] * max_batch
        # Per slot, how many leading positions hold written (or zeroed) values. The decode call
        # reads every slot up to the longest row, masked; a masked NaN still poisons the row
        # (0 * NaN), so memory `torch.empty` left uninitialized is zeroed before it is read.
        self.clean = [0] * max_batch

    def _check_cache_fits(self, nbytes: int) -> None:
        """On a GPU the cache is allocated up front: refuse one that cannot fit, saying why.
        (On CPU `torch.empty` pages are committed as slots fill, so nothing is checked.)"""
        if self.device.type != "cuda":
            return
        free, _ = torch.cuda.mem_get_info(self.device)
        if nbytes > 0.9 * free:
            raise ValueError(f"the KV cache needs {nbytes / 2**30:.1f} GiB for {self.max_batch} "
                             f"slots of {self.max_len} tokens, {free / 2**30:.1f} GiB is free: "
                             "lower the max_batch or max_len option")

    def _padded_lm_head(self, head: Any, backend: str) -> Linear:
        """The LM head widened to whole `ARGMAX_BLOCK`s of columns; a -inf bias on the padding
        and on ids past the tokenizer's vocabulary keeps them from ever being the argmax."""
        rows, cols = head.weight.shape
        blocks = -(-rows // ARGMAX_BLOCK)
        weight = torch.cat([head.weight, head.weight.new_zeros(blocks * ARGMAX_BLOCK - rows, cols)])
        bias = weight.new_zeros(blocks * ARGMAX_BLOCK)
        if head.bias is not None:
            bias[:rows] = head.bias
        bias[self.vocab_limit:] = float("-inf")
        return make_linear(weight, bias, backend)

    def _argmax(self, logits: torch.Tensor) -> list[int]:
        """Row-wise `argmax` (first index of the maximum), done in two levels because torch's
        CPU argmax is a scalar loop: vectorized block maxima, then argmax inside one block."""
        blocks = logits.view(logits.shape[0], -1, ARGMAX_BLOCK)
        best = blocks.amax(-1).argmax(-1)
        inner = blocks[self.arange[:logits.shape[0]], best].argmax(-1)
        out: list[int] = (inner + best * ARGMAX_BLOCK).tolist()
        return out

    # -- slots ----------------------------------------------------------------------------------

    def join(self, seq: Sequence) -> None:
        """Give `seq` the lowest free slot (the scheduler never joins more than `max_batch`)."""
        seq.slot = self.owner.index(None)
        self.owner[seq.slot] = seq
        if seq.params.temperature > 0:
            seq.gen = torch.Generator(device=self.device)
            seq.gen.manual_seed(seq.params.seed if seq.params.seed is not None else 0)

    def leave(self, seq: Sequence) -> None:
        if 0 <= seq.slot < self.max_batch and self.owner[seq.slot] is seq:
            self.owner[seq.slot] = None
        seq.slot = -1

    def reset(self) -> None:
        self.owner = [None] * self.max_batch

    def _move(self, seq: Sequence, dst: int) -> None:
        """Move `seq`'s cached tokens to slot `dst`, swapping with whoever is there."""
        src, other = seq.slot, self.owner[dst]
        n, m = seq.cached, other.cached if other is not None else 0
        for cache in (*self.kcache, *self.vcache):
            mine = cache[src, :, :n].clone()
            if other is not None:
                cache[src, :, :m] = cache[dst, :, :m]
            cache[dst, :, :n] = mine
        self.owner[src], self.owner[dst] = other, seq
        self.clean[dst], self.clean[src] = max(self.clean[dst], n), max(self.clean[src], m)
        seq.slot = dst
        if other is not None:
            other.slot = src

    # -- one step -------------------------------------------------------------------------------

    def _rms(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float32:  # one fused kernel, bitwise LlamaRMSNorm's float32 result
            return F.rms_norm(x, (x.shape[-1],), weight, self.eps)
        h = x.to(torch.float32)  # as LlamaRMSNorm: normalize in float32, scale in model dtype
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * h.to(x.dtype)

    def _rope(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """`x * cos + rotate_half(x) * sin`, with rotate_half's minus sign kept in `sin`."""
        half = x.shape[-1] // 2
        return (x * cos) + (torch.cat((x[..., half:], x[..., :half]), dim=-1) * sin)

    def _zero_unwritten(self, b: int, span: int) -> None:
        """Zero what slots 0..b-1 have never held below `span` (the decode rows' key range)."""
        for i in range(b):
            if self.clean[i] < span:
                for cache in (*self.kcache, *self.vcache):
                    cache[i, :, self.clean[i]:span] = 0
                self.clean[i] = span

    @torch.inference_mode()
    def step(self, decode: list[Sequence], chunks: list[tuple[Sequence, int]]) -> list[int]:
        """One forward pass: a token for each `decode` sequence (its `last` token goes in) and `n`
        more prompt tokens for each `(seq, n)` chunk. Returns the next token of every decode
        sequence, then of every chunk that completes its prompt; advances `seq.cached`.

        The last layer runs attention and MLP only for the rows that produce a token (each
        decode row, the final row of each completed prompt): the other prompt rows only need
        their keys and values there, which its q/k/v projection already gave. That skips about
        a quarter of a layer's prefill work; each kept row's math is the same as before."""
        for i, seq in enumerate(decode):
            if seq.slot != i:
                self._move(seq, i)
        b = len(decode)
        tokens = [seq.last for seq in decode]
        positions = [seq.cached for seq in decode]
        for seq, n in chunks:
            tokens += seq.ids[seq.cached:seq.cached + n]
            positions += range(seq.cached, seq.cached + n)
        ids = torch.tensor(tokens, device=self.device)
        pos = torch.tensor(positions, device=self.device)
        cos, sin = self.cos[pos].unsqueeze(1), self.sin[pos].unsqueeze(1)
        if b:
            span = max(positions[:b]) + 1
            rows, dpos = self.arange[:b], pos[:b]
            dmask = (self.arange[:span] <= dpos[:, None]).view(b, 1, 1, span)
            self._zero_unwritten(b, span)
        cmasks = [None if seq.cached == 0 else
                  self.arange[:seq.cached + n] <= self.arange[seq.cached:seq.cached + n, None]
                  for seq, n in chunks]
        completes = [seq.cached + n == len(seq.ids) for seq, n in chunks]
        keep, start = list(range(b)), b  # the rows that produce a token
        for (_, n), done in zip(chunks, completes, strict=True):
            start += n
            if done:
                keep.append(start - 1)
        hq, hk, d = self.heads, self.kv_heads, self.head_dim
        x = F.embedding(ids, self.embed)
        last = len(self.layers) - 1
        for li, (layer, kc, vc) in enumerate(zip(self.layers, self.kcache, self.vcache,
                                                 strict=True)):
            qkv = layer.qkv(self._rms(x, layer.ln1))
            qk = self._rope(qkv[:, :(hq + hk) * d].view(-1, hq + hk, d), cos, sin)
            q, k = qk[:, :hq], qk[:, hq:]
            v = qkv[:, (hq + hk) * d:].view(-1, hk, d)
            outs = []
            if b:
                kc[rows, :, dpos] = k[:b]
                vc[rows, :, dpos] = v[:b]
                o = F.scaled_dot_product_attention(
                    q[:b].unsqueeze(2), kc[:b, :, :span], vc[:b, :, :span], attn_mask=dmask,
                    scale=self.scale, **self.gqa)
                outs.append(o.view(b, hq * d))
            start = b
            for (seq, n), cmask, done in zip(chunks, cmasks, completes, strict=True):
                s, c, end = seq.slot, seq.cached, start + n
                kc[s, :, c:c + n] = k[start:end].transpose(0, 1)
                vc[s, :, c:c + n] = v[start:end].transpose(0, 1)
                if li < last:
                    o = F.scaled_dot_product_attention(
                        q[start:end].transpose(0, 1).unsqueeze(0), kc[s:s + 1, :, :c + n],
                        vc[s:s + 1, :, :c + n], attn_mask=cmask, is_causal=cmask is None,
                        scale=self.scale, **self.gqa)
                    outs.append(o[0].transpose(0, 1).reshape(n, hq * d))
                elif done:  # the prompt's final row sees every cached position: no mask
                    o = F.scaled_dot_product_attention(
                        q[end - 1:end].transpose(0, 1).unsqueeze(0), kc[s:s + 1, :, :c + n],
                        vc[s:s + 1, :, :c + n], attn_mask=None, scale=self.scale, **self.gqa)
                    outs.append(o[0].transpose(0, 1).reshape(1, hq * d))
                start = end
            if li == last:
                if not keep:
                    break
                if len(keep) < x.shape[0]:
                    x = x[torch.tensor(keep, device=self.device)]
            x += layer.o(outs[0] if len(outs) == 1 else torch.cat(outs))
            gu = layer.gate_up(self._rms(x, layer.ln2))
            act = F.silu(gu[:, :self.inter])
            x += layer.down(act.mul_(gu[:, self.inter:]))  # in place: one [N, inter] buffer
        for seq, n in chunks:
            seq.cached += n
            self.clean[seq.slot] = max(self.clean[seq.slot], seq.cached)
        for seq in decode:
            seq.cached += 1  # its new position is below `span`, already counted clean
        if not keep:
            return []
        logits = self.lm_head(self._rms(x, self.norm))  # [len(keep), padded vocab]
        out = self._argmax(logits)
        owners = [*decode, *(seq for (seq, _), done in zip(chunks, completes, strict=True)
                             if done)]
        for i, seq in enumerate(owners):
            if seq.params.temperature > 0:
                out[i] = self.engine.next_token(logits[i, :self.vocab_limit], seq.params,
                                                seq.gen)
        return out
