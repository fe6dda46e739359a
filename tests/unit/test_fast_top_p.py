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

    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).repeat(20000, 1)
    picked = GumbelSampler(temperature=1.0, top_p=0.9)(None, logits).argmax(dim=-1)
    freq = torch.bincount(picked, minlength=4).float() / len(picked)
    # nucleus {0, 1, 2} (mass before token 2 is 0.8 < 0.9); renormalized 0.5/0.95, 0.3/0.95, 0.15/0.95
    assert freq[3] == 0
    assert torch.allclose(freq[:3], torch.tensor([0.5, 0.3, 0.15]) / 0.95, atol=0.015)
