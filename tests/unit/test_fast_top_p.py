"""FastTopP keeps the tokens transformers' TopPLogitsWarper keeps (up to float rounding at the boundary)."""
from __future__ import annotations

import pytest
import torch
from transformers import TopPLogitsWarper

from cai.engines.sampling import FastTopP


@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.95, 0.999])
@pytest.mark.parametrize("scale", [0.5, 3.0, 8.0])
def test_same_kept_set_as_transformers(top_p, scale):
    torch.manual_seed(0)
    scores = torch.randn(6, 5000) * scale
    ours = torch.isfinite(FastTopP(top_p, candidates=64)(None, scores.clone()))
    theirs = torch.isfinite(TopPLogitsWarper(top_p)(None, scores.clone()))
    # The two sum probabilities in opposite orders, so a token sitting exactly on the boundary may differ.
    assert (ours ^ theirs).sum(dim=-1).max() <= 1
    kept = scores.masked_fill(~ours, float("-inf"))
    assert torch.equal(FastTopP(top_p, 64)(None, scores.clone()), kept)


def test_keeps_the_top_token_even_for_tiny_top_p():
    scores = torch.tensor([[0.0, 5.0, 1.0]])
    assert torch.isfinite(FastTopP(1e-6)(None, scores)).tolist() == [[False, True, False]]


def test_gumbel_sampler_draws_from_the_nucleus_with_the_right_frequencies():
    from cai.engines.sampling import GumbelSampler

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(20000, 1)
    picked = GumbelSampler(temperature=1.0, top_p=0.9, seeds=range(20000))(None, logits).argmax(dim=-1)
    freq = torch.bincount(picked, minlength=4).float() / len(picked)
    # nucleus {0, 1, 2} (mass before token 2 is 0.8 < 0.9); renormalized 0.5/0.95, 0.3/0.95, 0.15/0.95
    assert freq[3] == 0
    assert torch.allclose(freq[:3], torch.tensor([0.5, 0.3, 0.15]) / 0.95, atol=0.015)


def test_gumbel_sampler_draws_of_a_row_depend_on_its_seed_not_its_batch():
    from cai.engines.sampling import GumbelSampler

    logits = torch.randn(8, 300, generator=torch.Generator().manual_seed(1))
    seeds = [11, 22, 33, 44, 55, 66, 77, 88]

    def draws(rows, sampler_seeds, steps=6):
        sampler = GumbelSampler(temperature=1.0, top_p=0.95, seeds=sampler_seeds)
        return [sampler(None, logits[rows]).argmax(dim=-1).tolist() for _ in range(steps)]

    together = draws(list(range(8)), seeds)
    for row in range(8):  # alone, and in another batch order, row `row` draws the same tokens step by step
        assert [step[0] for step in draws([row], [seeds[row]])] == [step[row] for step in together]
    reordered = draws(list(range(7, -1, -1)), seeds[::-1])
    assert [step[::-1] for step in reordered] == together
    assert len({tuple(step) for step in together}) > 1  # the steps differ: the step is part of the draw
