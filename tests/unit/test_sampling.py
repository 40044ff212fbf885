"""The shared batched sampler: exact nucleus, per-row seeds, unseeded rows, limits taken safely."""

from __future__ import annotations

import collections
import math
import random

import torch

from targets.model.engine import GenParams
from targets.model.sampling import (
    BLOCK,
    GREEDY_BELOW,
    PROCESS_RNG,
    _draw_blocks,
    _draw_cdf,
    is_greedy,
    row_generator,
    sample,
)

VOCAB, REAL = 4096, 4049  # a padded LM head, narrower than the tiny model's 50,304 (fast tests)


def lm_logits(rows: int, seed: int = 0) -> torch.Tensor:
    """Logits shaped like the tiny model's: near-flat over the vocabulary (std ~0.3), a few
    clear favourites, and -inf on the padding past the tokenizer's ids (`REAL`)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, VOCAB, generator=g) * 0.3
    x[:, :5] += torch.tensor([6.0, 5.0, 4.5, 4.0, 3.0])
    x[:, REAL:] = float("-inf")
    return x


def test_seeded_rows_draw_the_same_tokens_whatever_their_batch_neighbours() -> None:
    params = GenParams(max_tokens=8, temperature=0.8, top_p=0.95, seed=11)
    alone_rng, crowd_rng = row_generator(params), row_generator(params)
    assert alone_rng is not None and crowd_rng is not None and alone_rng is not PROCESS_RNG
    others = [GenParams(max_tokens=8, temperature=t, top_p=p, seed=s)
              for t, p, s in ((1.0, 1.0, 1), (0.5, 0.5, 2), (1.2, 0.9, None))]
    other_rngs = [r for p in others if (r := row_generator(p)) is not None]
    alone, crowd = [], []
    for step in range(8):
        logits = lm_logits(4, seed=step)
        alone += sample(logits[2:3], [params], [alone_rng])
        # the same row third in a batch of four, after rows that sample differently
        tokens = sample(logits, [others[0], others[1], params, others[2]],
                        [other_rngs[0], other_rngs[1], crowd_rng, other_rngs[2]])
        crowd.append(tokens[2])
    assert alone == crowd
    again_rng = row_generator(params)
    assert again_rng is not None
    again = [sample(lm_logits(4, seed=step)[2:3], [params], [again_rng])[0] for step in range(8)]
    assert again == alone
    assert len(set(alone)) > 1  # it samples: not one token repeated


def test_unseeded_identical_rows_draw_from_the_process_generator_and_differ() -> None:
    params = GenParams(max_tokens=16, temperature=1.0)
    rng = row_generator(params)
    assert rng is PROCESS_RNG
    logits = lm_logits(1).expand(2, VOCAB)
    draws = [sample(logits, [params, params], [rng, rng]) for _ in range(16)]
    assert [a for a, _ in draws] != [b for _, b in draws]


def test_the_nucleus_is_exact_and_draws_follow_its_renormalized_probabilities() -> None:
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    rows = 4000
    logits = probs.log().expand(rows, 4)
    # mass before each token: 0, 0.5, 0.8, 0.95 — with top_p 0.8 only the first two are kept
    params = [GenParams(max_tokens=1, temperature=1.0, top_p=0.8)] * rows
    rng = random.Random(5)
    counts = collections.Counter(sample(logits, params, [rng] * rows))
    assert set(counts) == {0, 1}
    share = counts[0] / rows  # 0.5 / 0.8 = 0.625; binomial sd ~0.0077
    assert abs(share - 0.625) < 0.04


def test_a_nucleus_of_one_token_in_a_steep_distribution_needs_many_rounds_and_stays_exact() -> None:
    # geometric weights: each token half as likely as the one before; with top_p 0.4 only
    # token 0 (mass 0.5) is kept, and most rejection draws land in a long light tail first
    logits = torch.arange(64, dtype=torch.float32).mul(-math.log(2)).flip(0).expand(500, 64)
    params = [GenParams(max_tokens=1, temperature=1.0, top_p=0.4)] * 500
    rng = random.Random(9)
    assert set(sample(logits, params, [rng] * 500)) == {63}


def test_top_k_and_min_p_keep_only_the_allowed_tokens() -> None:
    logits = lm_logits(200)
    rng = random.Random(3)
    top2 = sample(logits, [GenParams(max_tokens=1, temperature=1.0, top_k=2)] * 200, [rng] * 200)
    best2 = logits.topk(2).indices.tolist()  # the noise reorders tokens 1 and 2 in some rows
    assert all(t in best2[i] for i, t in enumerate(top2)) and len(set(top2)) > 1
    # min_p 0.3: tokens at least 0.3 x as likely as token 0 (logit 6): logit >= 6 + ln 0.3 = 4.8
    floor = sample(logits, [GenParams(max_tokens=1, temperature=1.0, min_p=0.3)] * 200,
                   [rng] * 200)
    lowest = (logits.amax(-1) + math.log(0.3)).tolist()
    assert all(logits[i, t] >= lowest[i] for i, t in enumerate(floor)) and len(set(floor)) > 1


def test_padding_is_never_drawn_even_with_a_uniform_at_the_top() -> None:
    class Top(random.Random):
        def random(self) -> float:
            return 1.0 - 2**-53  # the largest float below 1

    logits = lm_logits(3)
    params = [GenParams(max_tokens=1, temperature=2.0)] * 3
    tokens = sample(logits, params, [Top()] * 3)
    assert all(t < REAL and math.isfinite(logits[0, t].item()) for t in tokens)


def test_tiny_temperature_and_tiny_top_p_are_their_limits_without_nan() -> None:
    assert is_greedy(GenParams(max_tokens=1, temperature=1e-45))
    assert row_generator(GenParams(max_tokens=1, temperature=1e-45)) is None
    logits = lm_logits(2)
    best = logits.argmax(-1).tolist()
    rng = random.Random(1)
    coldest = [GenParams(max_tokens=1, temperature=GREEDY_BELOW, seed=1)] * 2
    assert sample(logits, coldest, [rng] * 2) == best
    narrowest = [GenParams(max_tokens=1, temperature=1.0, top_p=5e-324)] * 2
    assert sample(logits, narrowest, [rng] * 2) == best


def test_the_two_level_draw_is_the_inverse_cdf_of_the_whole_vocabulary() -> None:
    assert VOCAB % BLOCK == 0
    e = lm_logits(64, seed=4).softmax(-1)  # zero weight on the padding, as the sampler makes it
    u = torch.rand(64, generator=torch.Generator().manual_seed(2))
    u[:3] = torch.tensor([0.0, 0.5, 1.0 - 2**-24])  # the bottom, the middle, the very top
    blocks, total = _draw_blocks(e, u)
    full, full_total = _draw_cdf(e, u)
    assert torch.allclose(total, full_total)
    # the same token wherever float rounding of the two sums cannot tell them apart: all but
    # draws within a rounding error of a token's edge (none of these 64)
    assert blocks.tolist() == full.tolist()
    assert all(e[i, t] > 0 for i, t in enumerate(blocks.tolist()))


def test_draws_across_blocks_follow_the_probabilities() -> None:
    # favourites in different 64-token blocks, and a flat tail: shares must match p
    logits = torch.zeros(256)
    logits[[3, 70, 200]] = torch.tensor([3.0, 2.0, 1.0])
    probs = logits.softmax(-1)
    rows = 6000
    params = [GenParams(max_tokens=1, temperature=1.0)] * rows
    counts = collections.Counter(sample(logits.expand(rows, 256), params,
                                        [random.Random(8)] * rows))
    for token in (3, 70, 200):
        p = probs[token].item()
        assert abs(counts[token] / rows - p) < 4 * math.sqrt(p * (1 - p) / rows)
