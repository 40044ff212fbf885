"""Prefix caching for continuous batching: prompts that start alike reuse the keys and values.

    prefix = PrefixCache(cache, block=16, blocks=4096)
    n = prefix.load(seq.ids, slot)       # copies the longest cached run of whole blocks: n tokens
    ...                                  # the model computes tokens n.. of the prompt
    prefix.store(seq.ids, slot)          # once the prompt is in the slot: keep its whole blocks

The unit is a block of `block` prompt tokens; a block is known by its tokens and the hash of
every block before it (a chain, as vLLM's), so a block is found only behind the same prefix. A
hit copies the block's keys and values from the pool into the sequence's `SlotCache` slot (one
copy per layer instead of a forward pass over those tokens); at least the prompt's last token is
always computed, since it gives the first output token. The pool holds `blocks` blocks in all,
allocated up front like the slot cache; when it is full the least recently used block is
evicted. `queries` / `hits` count prompt tokens looked up and tokens served from the pool (vLLM's
`prefix_cache_queries` / `prefix_cache_hits`).
"""

from __future__ import annotations

import collections
from collections.abc import Sequence

import torch

from targets.batching.slot_cache import SlotCache

BlockKey = tuple[int, tuple[int, ...]]  # (hash of the blocks before, this block's tokens)


class PrefixCache:
    """A pool of `blocks` cached prompt blocks of `block` tokens beside `cache` (module doc)."""

    def __init__(self, cache: SlotCache, block: int, blocks: int) -> None:
        self.cache, self.block = cache, block
        kv_heads, head_dim = cache.k[0].shape[1], cache.k[0].shape[3]
        shape = (blocks, kv_heads, block, head_dim)
        like = cache.k[0]
        self.k = [like.new_empty(shape) for _ in cache.k]
        self.v = [like.new_empty(shape) for _ in cache.v]
        self.where: collections.OrderedDict[BlockKey, int] = collections.OrderedDict()
        self.free = list(range(blocks - 1, -1, -1))
        self.queries = 0
        self.hits = 0

    def _keys(self, ids: Sequence[int], n_blocks: int) -> list[BlockKey]:
        keys, parent, b = [], 0, self.block
        for i in range(n_blocks):
            key = (parent, tuple(ids[i * b:(i + 1) * b]))
            keys.append(key)
            parent = hash(key)
        return keys

    def load(self, ids: Sequence[int], slot: int) -> int:
        """Copy the longest cached run of `ids`' leading whole blocks (never its last token)
        into `slot`; return how many tokens it holds now (a multiple of `block`, maybe 0)."""
        self.queries += len(ids)
        found, keys = [], self._keys(ids, (len(ids) - 1) // self.block)
        for key in keys:
            if (at := self.where.get(key)) is None:
                break
            found.append(at)
        if not found:
            return 0
        self._touch(keys[:len(found)])
        n = len(found) * self.block
        rows = torch.tensor(found, device=self.k[0].device)
        for pool, cache in zip((*self.k, *self.v), (*self.cache.k, *self.cache.v), strict=True):
            blocks = pool[rows]  # [found, kv_heads, block, head_dim]
            cache[slot, :, :n] = blocks.transpose(0, 1).reshape(blocks.shape[1], n, -1)
        self.cache.written(slot, n)
        self.hits += n
        return n

    def store(self, ids: Sequence[int], slot: int) -> None:
        """Keep the whole blocks of `ids` (held in `slot`, all computed) that the pool lacks,
        evicting the least recently used blocks when it is full."""
        b, keys = self.block, self._keys(ids, len(ids) // self.block)
        for i, key in enumerate(keys):
            if key in self.where:
                continue
            if not self.free:
                if not self.where:
                    return
                self.free.append(self.where.popitem(last=False)[1])
            at = self.free.pop()
            self.where[key] = at
            for pool, cache in zip((*self.k, *self.v), (*self.cache.k, *self.cache.v),
                                   strict=True):
                pool[at] = cache[slot, :, i * b:(i + 1) * b]
        self._touch(keys)

    def _touch(self, keys: list[BlockKey]) -> None:
        """Mark a chain's blocks used, its first block last: a chain is evicted from its end,
        never cut off behind an evicted first block."""
        for key in reversed(keys):
            if key in self.where:
                self.where.move_to_end(key)
