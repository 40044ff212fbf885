"""The model side of continuous batching: one forward pass over a mixed batch, on a slot KV cache.

`LlamaBatchModel.step(decode, chunks)` runs every token of one scheduler step as one flat batch
through a Llama-architecture model: one new token for each decoding sequence plus a chunk of
prompt for each joining one. Linear layers see all N tokens at once (one GEMM each); attention is
done per kind: the decoding rows attend together over their cache slots with a per-row length
mask, each prompt chunk attends causally over its own slot. Only rows that produce a token go
through the last layer's attention and MLP and reach the LM head (a prompt's other rows need only
their keys and values there), and one `.tolist()` per step brings the greedy tokens back.

The cache is a `SlotCache` (slot_cache.py): decoding sequences live in slots 0..B-1, so the
batch's keys are one strided view. The weights are the loaded transformers model's, fused and
prepacked (llama_weights.py), and the math repeats the model's op for op (RMSNorm in float32,
rotary tables from the model's own `inv_freq`, SDPA), so greedy output equals `HFEngine.generate`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from targets.batching.llama_weights import LayerWeights, Linear, make_linear, rotary_tables
from targets.batching.prefix_cache import PrefixCache
from targets.batching.scheduler import Sequence
from targets.batching.slot_cache import SlotCache
from targets.model.hf import HFEngine
from targets.model.sampling import sample

SUPPORTED = ("llama",)
STATIC_ROPE = ("default", "linear", "llama3", "yarn")
ARGMAX_BLOCK = 1024  # logit columns per block of the two-level argmax
PREFIX_BLOCK = 16  # prompt tokens per prefix-cache block (vLLM's default block size)


@dataclass(frozen=True)
class _DecodeRows:
    """The decode rows of a step: rows (and slots) 0..b-1 of the flat batch, at positions `pos`
    (`[b]`), attending over keys `0..span-1` of their slots under `mask` (`[b, 1, 1, span]`)."""

    rows: torch.Tensor
    pos: torch.Tensor
    mask: torch.Tensor
    span: int


@dataclass(frozen=True)
class _Chunk:
    """One prompt chunk of a step: flat-batch rows `start:end`, written to `slot` at positions
    `cached:cached + end - start`. `mask` is None when the chunk starts its prompt (plain causal
    attention); `completes`: its last row is the prompt's last token, which produces a token."""

    slot: int
    cached: int
    start: int
    end: int
    mask: torch.Tensor | None
    completes: bool


@dataclass(frozen=True)
class _Batch:
    """Everything one step feeds the layers: token ids (`[N]`), their rotary rows (`[N, 1,
    head_dim]`), the decode rows (None when nobody decodes), the chunks, and `keep`: the rows
    that produce a token (each decode row, the final row of each completed prompt)."""

    ids: torch.Tensor
    cos: torch.Tensor
    sin: torch.Tensor
    decode: _DecodeRows | None
    chunks: list[_Chunk]
    keep: list[int]


class LlamaBatchModel:
    """A Llama-architecture transformers model stepped as a continuous batch (see module doc).

    `max_batch`: cache slots (sequences at once); `max_len`: tokens per slot, prompt included
    (default: the model's context); `backend`: `onednn` or `torch` for the linear layers;
    `prefix_gb`: GiB of prefix-cache blocks of `PREFIX_BLOCK` tokens (prefix_cache.py; 0: off). Per
    sequence it keeps a cache slot (`cache.slot_of`) and, when sampling, its generator, from
    `join` until `leave` or `reset`.
    """

    def __init__(self, engine: HFEngine, max_batch: int, max_len: int | None = None,
                 backend: str = "onednn", prefix_gb: float = 0.0) -> None:
        model, cfg = engine.model, engine.model.config
        rope = getattr(model.model.rotary_emb, "rope_type", "default")
        if cfg.model_type not in SUPPORTED or rope not in STATIC_ROPE:
            raise ValueError(f"continuous batching runs Llama-architecture models with static "
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
            self.layers = [LayerWeights(layer, backend) for layer in model.model.layers]
            self.norm = model.model.norm.weight
            self.lm_head = self._padded_lm_head(model.lm_head, backend)
            self.cos, self.sin = rotary_tables(model.model.rotary_emb, self.max_len, self.device,
                                               self.dtype)
            self.cache = SlotCache(len(self.layers), max_batch, self.kv_heads, self.max_len,
                                   self.head_dim, self.dtype, self.device)
            self.arange = torch.arange(max(self.max_len, max_batch), device=self.device)
            block_bytes = (2 * len(self.layers) * self.kv_heads * PREFIX_BLOCK * self.head_dim
                           * self.dtype.itemsize)
            blocks = int(prefix_gb * 2**30 // block_bytes)
            self.prefix = PrefixCache(self.cache, PREFIX_BLOCK, blocks) if blocks else None
        self.generators: dict[Sequence, random.Random] = {}  # per sequence that samples

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

    # -- joining and leaving --------------------------------------------------------------------

    @torch.inference_mode()
    def join(self, seq: Sequence) -> None:
        """Give `seq` the lowest free slot (the scheduler never joins more than `max_batch`) and,
        when it samples, the generator `HFEngine.generate` would draw it with. With a prefix
        cache, the prompt's cached leading blocks are copied into the slot (`seq.cached`)."""
        slot = self.cache.assign(seq)
        if self.prefix is not None:
            seq.cached = self.prefix.load(seq.ids, slot)
        gen = self.engine.generator(seq.params)
        if gen is not None:
            self.generators[seq] = gen

    def leave(self, seq: Sequence) -> None:
        self.cache.release(seq)
        self.generators.pop(seq, None)

    def reset(self) -> None:
        self.cache.clear()
        self.generators.clear()

    # -- one step -------------------------------------------------------------------------------

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
            if self.cache.slot_of[seq] != i:
                self.cache.move(seq, i)
        batch = self._flat_batch(decode, chunks)
        if batch.decode is not None:
            self.cache.zero_unwritten(len(decode), batch.decode.span)
        x = self._layers(batch)
        for seq, n in chunks:
            seq.cached += n
            self.cache.written(self.cache.slot_of[seq], seq.cached)
            if self.prefix is not None and seq.cached == len(seq.ids):
                self.prefix.store(seq.ids, self.cache.slot_of[seq])
        for seq in decode:
            seq.cached += 1  # its new position is below `span`, already counted clean
        if x is None:
            return []
        owners = [*decode, *(seq for (seq, _), chunk in zip(chunks, batch.chunks, strict=True)
                             if chunk.completes)]
        return self._next_tokens(x, owners)

    def _flat_batch(self, decode: list[Sequence], chunks: list[tuple[Sequence, int]]) -> _Batch:
        """The step's tokens as one flat batch: the decode rows first, then each chunk's."""
        b = len(decode)
        tokens = [seq.last for seq in decode]
        positions = [seq.cached for seq in decode]
        for seq, n in chunks:
            tokens += seq.ids[seq.cached:seq.cached + n]
            positions += range(seq.cached, seq.cached + n)
        ids = torch.tensor(tokens, device=self.device)
        pos = torch.tensor(positions, device=self.device)
        rows = None
        if b:
            span = max(positions[:b]) + 1
            dpos = pos[:b]
            mask = (self.arange[:span] <= dpos[:, None]).view(b, 1, 1, span)
            rows = _DecodeRows(self.arange[:b], dpos, mask, span)
        parts: list[_Chunk] = []
        keep, start = list(range(b)), b
        for seq, n in chunks:
            c = seq.cached
            mask_c = None if c == 0 else self.arange[:c + n] <= self.arange[c:c + n, None]
            parts.append(_Chunk(self.cache.slot_of[seq], c, start, start + n, mask_c,
                                c + n == len(seq.ids)))
            start += n
            if parts[-1].completes:
                keep.append(start - 1)
        return _Batch(ids, self.cos[pos].unsqueeze(1), self.sin[pos].unsqueeze(1), rows, parts,
                      keep)

    def _layers(self, batch: _Batch) -> torch.Tensor | None:
        """The decoder stack over the flat batch, writing every row's keys and values: the hidden
        state `[len(keep), hidden]` of the rows in `batch.keep`, or None when there are none."""
        x = F.embedding(batch.ids, self.embed)
        last = len(self.layers) - 1
        for li, layer in enumerate(self.layers):
            outs = self._attention(li, x, batch, final=li == last)
            if li == last:
                if not batch.keep:
                    return None
                if len(batch.keep) < x.shape[0]:
                    x = x[torch.tensor(batch.keep, device=self.device)]
            x += layer.o(outs[0] if len(outs) == 1 else torch.cat(outs))
            gu = layer.gate_up(self._rms(x, layer.ln2))
            act = F.silu(gu[:, :self.inter])
            x += layer.down(act.mul_(gu[:, self.inter:]))  # in place: one [N, inter] buffer
        return x

    def _attention(self, li: int, x: torch.Tensor, batch: _Batch,
                   final: bool) -> list[torch.Tensor]:
        """Layer `li`'s attention: writes every row's keys and values to the cache and returns
        the attention outputs (`[rows, heads * head_dim]` pieces, in row order) of every row, or
        on the `final` layer of the rows in `batch.keep` only."""
        layer, kc, vc = self.layers[li], self.cache.k[li], self.cache.v[li]
        hq, hk, d = self.heads, self.kv_heads, self.head_dim
        qkv = layer.qkv(self._rms(x, layer.ln1))
        qk = self._rope(qkv[:, :(hq + hk) * d].view(-1, hq + hk, d), batch.cos, batch.sin)
        q, k = qk[:, :hq], qk[:, hq:]
        v = qkv[:, (hq + hk) * d:].view(-1, hk, d)
        outs = []
        if (rows := batch.decode) is not None:
            b = rows.rows.shape[0]
            kc[rows.rows, :, rows.pos] = k[:b]
            vc[rows.rows, :, rows.pos] = v[:b]
            o = F.scaled_dot_product_attention(
                q[:b].unsqueeze(2), kc[:b, :, :rows.span], vc[:b, :, :rows.span],
                attn_mask=rows.mask, scale=self.scale, **self.gqa)
            outs.append(o.view(b, hq * d))
        for chunk in batch.chunks:
            if (part := self._chunk_attention(chunk, q, k, v, kc, vc, final)) is not None:
                outs.append(part)
        return outs

    def _chunk_attention(self, chunk: _Chunk, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                         kc: torch.Tensor, vc: torch.Tensor, final: bool) -> torch.Tensor | None:
        """Write one prompt chunk's keys and values to its slot, then attend causally over the
        slot: all its rows (`[n, heads * head_dim]`), or on the `final` layer only the prompt's
        last row (`[1, ...]`) if the chunk completes it, else nothing."""
        s, c, start, end = chunk.slot, chunk.cached, chunk.start, chunk.end
        n, hd = end - start, self.heads * self.head_dim
        kc[s, :, c:c + n] = k[start:end].transpose(0, 1)
        vc[s, :, c:c + n] = v[start:end].transpose(0, 1)
        if not final:
            o = F.scaled_dot_product_attention(
                q[start:end].transpose(0, 1).unsqueeze(0), kc[s:s + 1, :, :c + n],
                vc[s:s + 1, :, :c + n], attn_mask=chunk.mask, is_causal=chunk.mask is None,
                scale=self.scale, **self.gqa)
            return o[0].transpose(0, 1).reshape(n, hd)
        if chunk.completes:  # the prompt's final row sees every cached position: no mask
            o = F.scaled_dot_product_attention(
                q[end - 1:end].transpose(0, 1).unsqueeze(0), kc[s:s + 1, :, :c + n],
                vc[s:s + 1, :, :c + n], attn_mask=None, scale=self.scale, **self.gqa)
            return o[0].transpose(0, 1).reshape(1, hd)
        return None

    def _next_tokens(self, x: torch.Tensor, owners: list[Sequence]) -> list[int]:
        """The next token of each row of `x` (the last layer's output for `owners`, in order):
        the argmax of its logits, or for the sequences that sample one batched draw from theirs
        (`sampling.sample`; the padding columns' -inf bias keeps them out)."""
        logits = self.lm_head(self._rms(x, self.norm))  # [len(owners), padded vocab]
        drawn = [i for i, seq in enumerate(owners) if seq in self.generators]
        if not drawn:
            return self._argmax(logits)
        if len(drawn) == len(owners):
            return sample(logits, [s.params for s in owners], [self.generators[s] for s in owners])
        out = self._argmax(logits)
        tokens = sample(logits[torch.tensor(drawn, device=self.device)],
                        [owners[i].params for i in drawn],
                        [self.generators[owners[i]] for i in drawn])
        for i, token in zip(drawn, tokens, strict=True):
            out[i] = token
        return out

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
