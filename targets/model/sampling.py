"""The sampler every target shares: one batched pass draws the next token of many rows at once.

    rngs = [row_generator(p) for p in params]          # per request, from its first step
    tokens = sample(logits, params, rngs)              # logits `[rows, vocab]`, sampled rows only

Each row is sampled at its `temperature`, within its `top_k` most likely tokens, its `min_p`
floor (tokens at least `min_p` times as likely as the most likely one) and its `top_p` nucleus
(the most likely tokens whose mass, before each, is below `top_p`). The whole batch goes through
the same few vocabulary-wide kernels (one exp, one cumulative sum, one mass check for the rows
with a nucleus), whatever its size, instead of a softmax, a sort and a multinomial per row.

The nucleus is found without sorting the vocabulary, by rejection (the sorting-free top-p of
FlashInfer): draw a token from the row's distribution (inverse CDF: one uniform against the
cumulative sum); it is in the nucleus exactly when the mass of the tokens more likely than it is
below `top_p`, and then it is accepted — a draw from the distribution that lands in the nucleus
is a draw from the nucleus. Otherwise every token at most as likely as the drawn one lies outside
the nucleus: they are dropped and the row draws again. A random model's nucleus covers most of
the vocabulary, so nearly every row is accepted at its first draw; a row still drawing after
`MAX_ROUNDS` takes the exact sort-based nucleus. Tokens tied in probability at the nucleus' edge
are kept together (a sort would keep an arbitrary part of them).

Randomness: one uniform per row per draw from the row's own `random.Random` — seeded by the
request's `seed` (so a seeded request draws the same tokens run to run and whatever its batch
neighbours), or the one process generator for unseeded requests (seeded from the OS: two
unseeded identical requests differ). Limits are taken literally rather than computed: a
`temperature` below `GREEDY_BELOW` is greedy (its limit; `is_greedy`), and the nucleus always
keeps the most likely token, so a tiny `top_p` (5e-324) is top-1. No parameter gives NaN or inf.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from targets.model.engine import GenParams

if TYPE_CHECKING:  # torch loads with the first model, not with this module
    import torch

GREEDY_BELOW = 1e-5  # a temperature below this samples as its limit, 0: the argmax
BLOCK = 64  # tokens per block of the two-level draw (`_draw`); 50,304 = 786 blocks
MAX_ROUNDS = 16  # rejection draws of the nucleus before a row takes the exact sorted nucleus
PROCESS_RNG = random.Random()  # for unseeded requests; seeded from the OS


def is_greedy(params: GenParams) -> bool:
    """Whether `params` decode greedily: temperature 0, or so small that 0 is its limit."""
    return params.temperature < GREEDY_BELOW


def row_generator(params: GenParams) -> random.Random | None:
    """The uniforms of one request: its own generator seeded with `params.seed`, the process
    generator when it has none, None when it is greedy."""
    if is_greedy(params):
        return None
    if params.seed is None:
        return PROCESS_RNG
    return random.Random(params.seed)


def argmax(logits: torch.Tensor) -> list[int]:
    """Row-wise argmax of `[rows, vocab]` logits (the first maximum), as a list."""
    out: list[int] = logits.argmax(-1).tolist()
    return out


def sample(logits: torch.Tensor, params: Sequence[GenParams],
           rngs: Sequence[random.Random]) -> list[int]:
    """The next token of each row of `logits` (`[rows, vocab]`, `-inf` where a token must never
    come) for a sampling request, drawn with `rngs` (see the module doc). `logits` is not
    changed. Every row must sample (greedy rows take `argmax`)."""
    import torch

    e = _weights(logits, params)
    keep_p = torch.tensor([p.top_p for p in params], dtype=e.dtype, device=e.device)
    tokens = torch.zeros(e.shape[0], dtype=torch.long, device=e.device)
    todo = torch.arange(e.shape[0], device=e.device)
    norm = e.sum(-1)  # each row's whole mass: the nucleus is `top_p` of it
    for _ in range(MAX_ROUNDS):
        drawn = _draw(e, [rngs[i] for i in todo.tolist()])
        p = keep_p[todo]
        accept = p >= 1
        if not bool(accept.all()):  # a row with a nucleus: is the drawn token in it?
            # `e` keeps only the weights above each drawn one: their mass decides, and a
            # rejected draw's lighter tokens lie outside the nucleus, so its row goes on from them
            mass_above = _keep_heavier_(e, e.gather(1, drawn[:, None]))
            accept |= (mass_above <= 0) | (mass_above < p * norm[todo])
        tokens[todo[accept]] = drawn[accept]
        if bool(accept.all()):
            out: list[int] = tokens.tolist()
            return out
        e, todo = e[~accept], todo[~accept]
    tokens[todo] = _sorted_nucleus(e, keep_p[todo] * norm[todo], [rngs[i] for i in todo.tolist()])
    out = tokens.tolist()
    return out


def _weights(logits: torch.Tensor, params: Sequence[GenParams]) -> torch.Tensor:
    """Unnormalized probabilities `exp((logit - max) / temperature)` in float32 (the most likely
    token weighs 1), zero outside each row's top-k and min-p floor. A fresh tensor."""
    import torch

    dev = logits.device
    x = logits.float()
    top = x.amax(-1, keepdim=True)
    e = x.sub(top)
    if any(p.temperature != 1.0 for p in params):  # a multiply: cheaper than a division
        e.mul_(torch.tensor([1.0 / p.temperature for p in params], device=dev)[:, None])
    e.exp_()  # 0 for -inf logits, 1 for the maximum
    if ranked := [i for i, p in enumerate(params) if p.top_k > 0]:
        ks = [min(params[i].top_k, e.shape[1]) for i in ranked]
        at = torch.tensor(ranked, device=dev)
        kth = e[at].topk(max(ks), dim=-1).values.gather(
            1, torch.tensor(ks, device=dev)[:, None] - 1)
        e[at] = torch.where(e[at] >= kth, e[at], 0)
    if any(p.min_p > 0 for p in params):
        floor = torch.tensor([p.min_p for p in params], device=dev)[:, None]
        e = torch.where(e >= floor, e, 0)
    return e


def _draw(e: torch.Tensor, rngs: Sequence[random.Random]) -> torch.Tensor:
    """One inverse-CDF draw per row of the weights `e`, with one uniform from each row's
    generator: the drawn token ids.

    A vocabulary of whole `BLOCK`s is searched in two levels — the block sums' cumulative sum,
    then the chosen block's own — which is the same inverse CDF without a sequential scan of
    the whole vocabulary (the cumulative sum is ~10× slower than a block sum on a CPU). A row
    whose two levels disagree in the last float bit (it lands on a zero weight) draws again from
    the full cumulative sum with the same uniform."""
    import torch

    u = torch.tensor([rng.random() for rng in rngs], dtype=e.dtype, device=e.device)
    if e.shape[1] % BLOCK:
        return _draw_cdf(e, u)[0]
    drawn = _draw_blocks(e, u)[0]
    bad = e.gather(1, drawn[:, None])[:, 0] <= 0
    if bool(bad.any()):
        drawn[bad] = _draw_cdf(e[bad], u[bad])[0]
    return drawn


def _draw_blocks(e: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two-level inverse CDF of `_draw` (the vocabulary a whole number of blocks)."""
    import torch

    rows, vocab = e.shape
    blocks = e.view(rows, vocab // BLOCK, BLOCK)
    cdf = blocks.sum(-1).cumsum(-1)  # [rows, blocks]
    total = cdf[:, -1]
    target = (u * total)[:, None]
    block = torch.searchsorted(cdf, target, right=True).clamp_(max=cdf.shape[1] - 1)
    before = torch.where(block > 0, cdf.gather(1, (block - 1).clamp(min=0)), 0)
    inner = blocks.gather(1, block[:, :, None].expand(-1, 1, BLOCK))[:, 0].cumsum(-1) + before
    at = torch.searchsorted(inner, target, right=True).clamp_(max=BLOCK - 1)
    return (block * BLOCK + at)[:, 0], total


def _draw_cdf(e: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The inverse CDF over the whole cumulative sum: drawn ids and each row's mass."""
    import torch

    cdf = e.cumsum(-1)
    target = (u * cdf[:, -1])[:, None]
    drawn = torch.searchsorted(cdf, target, right=True).clamp_(max=e.shape[1] - 1)
    drawn = _nonzero_at_or_before(e, cdf, drawn)
    return drawn[:, 0], cdf[:, -1]


def _keep_heavier_(e: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Set to 0, in place, every weight of `e` not strictly above its row's `weight`
    (`[rows, 1]`); return each row's mass left. Row by row with a scalar threshold: one
    vectorized pass per row, ~4× faster on a CPU than a batched `where(e > weight, e, 0)`,
    whose broadcast comparison was the sampler's costliest kernel (2.0 vs 8.7 ms for
    32 × 50,304 here)."""
    import torch

    limits = weight[:, 0].tolist()
    return torch.stack([torch.threshold_(row, limit, 0.0).sum()
                        for row, limit in zip(e, limits, strict=True)])


def _nonzero_at_or_before(e: torch.Tensor, cdf: torch.Tensor,
                          drawn: torch.Tensor) -> torch.Tensor:
    """`drawn` (`[rows, 1]`), moved back to the last token of nonzero weight at or before it:
    a uniform rounding to the very top of a row's float cumulative sum lands past its last
    nonzero weight (at the clamp), and a zero-weight token must never come."""
    import torch

    zero = e.gather(1, drawn) <= 0
    if not bool(zero.any()):
        return drawn
    last = torch.searchsorted(cdf, cdf[:, -1:].contiguous())  # the first index reaching the total
    return torch.where(zero, last, drawn)


def _sorted_nucleus(e: torch.Tensor, nucleus: torch.Tensor,
                    rngs: Sequence[random.Random]) -> torch.Tensor:
    """The exact sort-based draw for the rows rejection did not settle: within the heaviest
    tokens of `e` whose mass before each is below `nucleus` (per row, the weight to keep)."""
    import torch

    w, order = e.sort(-1, descending=True)
    before = w.cumsum(-1) - w
    w = torch.where((before < nucleus[:, None]) | (before <= 0), w, 0)
    cdf = w.cumsum(-1)
    u = torch.tensor([rng.random() for rng in rngs], dtype=e.dtype, device=e.device)
    at = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).clamp_(max=e.shape[1] - 1)
    at = _nonzero_at_or_before(w, cdf, at)
    return order.gather(1, at)[:, 0]
