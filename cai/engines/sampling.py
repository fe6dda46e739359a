"""Sampling without touching the whole vocabulary twice per step.

transformers' TopPLogitsWarper sorts all 49k logits of every row at every step, and its sampler then runs
`multinomial` over the full vocabulary; on a CPU those two cost about a quarter of SmolLM2's decode step. The nucleus
almost always lies within the few hundred most likely tokens, so `FastTopP` takes a top-k first (sorting the full row
only when the top-k mass falls short of `top_p`, so the kept set stays exact), and `GumbelSampler` draws the token with
the Gumbel-max trick over those candidates and hands generate a one-token distribution that greedy decoding picks.
"""
from __future__ import annotations

import torch
from transformers import LogitsProcessor

CANDIDATES = 256


def nucleus(scores: torch.Tensor, top_p: float, top_k: int = 0, candidates: int = CANDIDATES):
    """(logits, vocabulary ids) of the kept tokens, -inf where dropped; top-k first, then top-p as transformers does."""
    vocab = scores.shape[-1]
    k = min(top_k or candidates, vocab)
    top, index = scores.topk(k, dim=-1)
    if top_p >= 1.0:
        return top, index
    # With top_k set, transformers renormalizes over the top-k before top-p; without, probabilities are the full ones.
    normalizer = top.logsumexp(dim=-1, keepdim=True) if top_k else scores.logsumexp(dim=-1, keepdim=True)
    probs = (top - normalizer).exp()
    cumulative = probs.cumsum(dim=-1)
    if not top_k and k < vocab and bool((cumulative[:, -1] < top_p).any()):
        return nucleus(scores, top_p, top_k, vocab)  # rare: the nucleus is wider than the candidates
    keep = (cumulative - probs) < top_p  # the probability mass strictly before a token is below top_p
    keep[:, 0] = True
    return top.masked_fill(~keep, float("-inf")), index


class FastTopP(LogitsProcessor):
    """Exact top-p filtering (the kept set of TopPLogitsWarper) via a top-k pre-selection."""

    def __init__(self, top_p: float, candidates: int = CANDIDATES):
        self.top_p, self.candidates = top_p, candidates

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Mask every token outside the smallest set whose probability reaches `top_p` (at least one kept)."""
        kept, index = nucleus(scores, self.top_p, 0, self.candidates)
        return torch.full_like(scores, float("-inf")).scatter(-1, index, kept)


class GumbelSampler(LogitsProcessor):
    """Temperature, top-k and top-p sampling as one processor; run generate greedily after it.

    argmax(logit / T + Gumbel noise) over the kept tokens is an exact draw from their softmax, and it uses torch's
    global generator, so a seeded run repeats.
    """

    def __init__(self, temperature: float, top_p: float = 1.0, top_k: int = 0):
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Scores that are -inf everywhere but the sampled token."""
        kept, index = nucleus(scores.float() / self.temperature, self.top_p, self.top_k)
        noise = -torch.log(-torch.log(torch.rand_like(kept).clamp_(1e-20, 1.0)))
        choice = index.gather(-1, (kept + noise).argmax(dim=-1, keepdim=True))
        return torch.full_like(scores, float("-inf")).scatter(-1, choice, 0.0)
