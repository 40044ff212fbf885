"""The KV cache of continuous batching: one fixed slot per running sequence, per layer.

    cache = SlotCache(layers=4, slots=64, kv_heads=4, max_len=2048, head_dim=64,
                      dtype=torch.float32, device=torch.device("cpu"))
    slot = cache.assign(seq)         # the lowest free slot, until cache.release(seq)
    cache.k[layer][slot, :, :n]      # [kv_heads, n, head_dim]: the keys of seq's first n tokens

Each layer's keys and values are preallocated as `[slots, kv_heads, max_len, head_dim]` with
`torch.empty` (the OS commits pages only as they are written). The model keeps its decoding
sequences in slots 0..B-1, so a decode step's keys are one strided view and nothing is gathered
per step: when a sequence leaves, the one that takes its place `move`s into its slot (one copy of
its cached tokens).

A position that was never written holds whatever the memory held, NaN included; a masked NaN
still poisons a row of attention (0 * NaN), so `zero_unwritten` clears what a decode call is
about to read. `clean[slot]` counts the leading positions of a slot that hold written (or
zeroed) values.
"""

from __future__ import annotations

import math

import torch

from targets.batching.scheduler import Sequence


class SlotCache:
    """Per-layer key and value tensors of `slots` sequences of up to `max_len` tokens each, and
    which sequence holds which slot (`slot_of`, `owner`). A sequence's cached length is its
    `Sequence.cached`; a slot's contents outlive its owner (and `clear`)."""

    def __init__(self, layers: int, slots: int, kv_heads: int, max_len: int, head_dim: int,
                 dtype: torch.dtype, device: torch.device) -> None:
        shape = (slots, kv_heads, max_len, head_dim)
        _check_fits(2 * layers * math.prod(shape) * dtype.itemsize, device, slots, max_len)
        self.k = [torch.empty(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.v = [torch.empty(shape, dtype=dtype, device=device) for _ in range(layers)]
        self.owner: list[Sequence | None] = [None] * slots
        self.slot_of: dict[Sequence, int] = {}
        self.clean = [0] * slots

    def assign(self, seq: Sequence) -> int:
        """Give `seq` the lowest free slot and return it (the caller never joins more than
        `slots` sequences at once)."""
        slot = self.owner.index(None)
        self.owner[slot] = seq
        self.slot_of[seq] = slot
        return slot

    def release(self, seq: Sequence) -> None:
        """Free `seq`'s slot; a no-op for a sequence that holds none."""
        slot = self.slot_of.pop(seq, None)
        if slot is not None and self.owner[slot] is seq:
            self.owner[slot] = None

    def clear(self) -> None:
        """Free every slot at once (the contents stay, and so do the `clean` counts)."""
        self.owner = [None] * len(self.owner)
        self.slot_of.clear()

    def move(self, seq: Sequence, dst: int) -> None:
        """Move `seq`'s cached tokens to slot `dst`, swapping with whoever is there."""
        src, other = self.slot_of[seq], self.owner[dst]
        n, m = seq.cached, other.cached if other is not None else 0
        for cache in (*self.k, *self.v):
            mine = cache[src, :, :n].clone()
            if other is not None:
                cache[src, :, :m] = cache[dst, :, :m]
            cache[dst, :, :n] = mine
        self.owner[src], self.owner[dst] = other, seq
        self.clean[dst], self.clean[src] = max(self.clean[dst], n), max(self.clean[src], m)
        self.slot_of[seq] = dst
        if other is not None:
            self.slot_of[other] = src

    def written(self, slot: int, n: int) -> None:
        """Record that positions `0..n-1` of `slot` now hold written values."""
        self.clean[slot] = max(self.clean[slot], n)

    def zero_unwritten(self, b: int, span: int) -> None:
        """Zero what slots 0..b-1 have never held below `span` (the decode rows' key range)."""
        for i in range(b):
            if self.clean[i] < span:
                for cache in (*self.k, *self.v):
                    cache[i, :, self.clean[i]:span] = 0
                self.clean[i] = span


def _check_fits(nbytes: int, device: torch.device, slots: int, max_len: int) -> None:
    """On a GPU the cache is allocated up front: refuse one that cannot fit, saying why.
    (On CPU `torch.empty` pages are committed as slots fill, so nothing is checked.)"""
    if device.type != "cuda":
        return
    free, _ = torch.cuda.mem_get_info(device)
    if nbytes > 0.9 * free:
        raise ValueError(f"the KV cache needs {nbytes / 2**30:.1f} GiB for {slots} slots of "
                         f"{max_len} tokens, {free / 2**30:.1f} GiB is free: lower the max_batch "
                         "or max_len option")
