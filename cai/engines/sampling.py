"""Sampling without touching the whole vocabulary twice per step.

transformers' TopPLogitsWarper sorts all 49k logits of every row at every step, and its sampler then runs
`multinomial` over the full vocabulary; on a CPU those two cost about a quarter of SmolLM2's decode step. The nucleus
almost always lies within the few hundred most likely tokens, so `FastTopP` takes a top-k first (sorting the full row
only when the top-k mass falls short of `top_p`, so the kept set stays exact), and `GumbelSampler` draws the token with
the Gumbel-max trick over those candidates and hands generate a one-token distribution that greedy decoding picks.

The Gumbel noise of token v at decoding step t of a row is a hash of (the row's seed, t, v): a counter-based draw, so
what a row samples depends on its own seed and logits only, never on the other rows of its batch, the batch size or
how many candidates a batch kept (the rows' bytes survive any re-batching, chunking, resuming or sharding).
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

    argmax(logit / T + Gumbel noise) over the kept tokens is an exact draw from their softmax; the noise is a hash of
    (row seed, step, token id), one seed per row in batch order.
    """

    def __init__(self, temperature: float, top_p: float = 1.0, top_k: int = 0, seeds=(0,)):
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.seeds = torch.tensor([int(s) & MASK63 for s in seeds], dtype=torch.int64)[:, None]
        self.step = 0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Scores that are -inf everywhere but the sampled token."""
        kept, index = nucleus(scores.float() / self.temperature, self.top_p, self.top_k)
        uniform = hashed_uniform(self.seeds.to(index.device), self.step, index)
        self.step += 1
        noise = -torch.log(-torch.log(uniform)).to(kept.dtype)
        choice = index.gather(-1, (kept + noise).argmax(dim=-1, keepdim=True))
        return torch.full_like(scores, float("-inf")).scatter(-1, choice, 0.0)


class RepetitionPenalty(LogitsProcessor):
    """transformers' repetition penalty (CTRL, Keskar et al. 2019) over each row's real tokens only: a left-padded
    row would otherwise penalize the pad token, so its draws would depend on the batch it was padded in."""

    def __init__(self, penalty: float, prompt_mask: torch.Tensor):
        self.penalty, self.mask = penalty, prompt_mask.bool()

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Divide positive (multiply negative) scores of every token the row has seen by `penalty`."""
        width = self.mask.shape[1]
        seen = input_ids.clone()
        last_prompt_token = seen[:, width - 1:width].expand(-1, width)  # always a real token: it repeats harmlessly
        seen[:, :width] = torch.where(self.mask.to(seen.device), seen[:, :width], last_prompt_token)
        picked = scores.gather(1, seen)
        picked = torch.where(picked < 0, picked * self.penalty, picked / self.penalty)
        return scores.scatter(1, seen, picked)


MASK63 = (1 << 63) - 1
_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)  # splitmix64's constants as signed 64-bit integers (torch has no uint64 ops)
_MIX1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_MIX2 = 0x94D049BB133111EB - (1 << 64)


def _wrap(value: int) -> int:
    """A Python int as the signed 64-bit integer with the same low 64 bits."""
    return (value + (1 << 63)) % (1 << 64) - (1 << 63)


def _shift_right(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical right shift of int64 (torch's >> is arithmetic)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def _mix(x: torch.Tensor) -> torch.Tensor:
    """splitmix64's finalizer (multiplications wrap modulo 2**64)."""
    x = (x ^ _shift_right(x, 30)) * _MIX1
    x = (x ^ _shift_right(x, 27)) * _MIX2
    return x ^ _shift_right(x, 31)


def hashed_uniform(seeds: torch.Tensor, step: int, tokens: torch.Tensor) -> torch.Tensor:
    """Uniforms in (0, 1), one per (row seed [rows, 1], step, token id [rows, k]), as float64."""
    state = _mix(seeds + _wrap((step + 1) * _GOLDEN))
    bits = _shift_right(_mix(state + (tokens + 1) * _GOLDEN), 11)  # 53 random bits
    return ((bits.double() + 0.5) * 2.0 ** -53)
