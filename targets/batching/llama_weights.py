"""A transformers Llama's weights laid out for one flat batch of tokens: fused linears, rope tables.

`LayerWeights` holds one decoder layer with q/k/v fused into one matrix and gate/up into another,
so a step runs one GEMM for each over all its tokens. `make_linear` picks how a linear runs: on
CPU, oneDNN with a prepacked weight when torch offers it (on this AMD CPU 2-3x faster than MKL's
sgemm, which `nn.Linear` uses), else `F.linear`. `rotary_tables` precomputes the rotary cos/sin
for every position with the model's own float32 math.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

Linear = Callable[[torch.Tensor], torch.Tensor]


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


class LayerWeights:
    """One decoder layer's weights, with q/k/v and gate/up fused into one matrix each.

    `qkv(x)` gives `[N, (heads + 2 * kv_heads) * head_dim]` (queries, keys, values in that
    order); `gate_up(x)` gives `[N, 2 * intermediate]` (gate, then up); `ln1`/`ln2` are the
    RMSNorm weights before attention and before the MLP.
    """

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


def rotary_tables(rot: Any, max_len: int, device: torch.device,
                  dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """`(cos, sin)`, each `[max_len, head_dim]` in `dtype`, for the model's rotary embedding
    `rot`: the same float32 math as `LlamaRotaryEmbedding.forward`, with `rotate_half`'s minus
    sign folded into `sin` (see `LlamaBatchModel._rope`)."""
    freqs = torch.arange(max_len, device=device, dtype=torch.float)[:, None]
    freqs = freqs * rot.inv_freq.to(device=device, dtype=torch.float)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos = (emb.cos() * rot.attention_scaling).to(dtype)
    sin = emb.sin() * rot.attention_scaling
    half = sin.shape[-1] // 2  # rotate_half(x) = cat(-x2, x1): the sign goes in the table
    return cos, torch.cat((-sin[:, :half], sin[:, half:]), dim=-1).to(dtype)
