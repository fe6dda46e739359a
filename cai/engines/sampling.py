"""Nucleus (top-p) filtering without sorting the whole vocabulary.

transformers' TopPLogitsWarper sorts all 49k logits of every row at every step; on a CPU that sort cost a fifth of
SmolLM2's decode time. The nucleus almost always lies within the few hundred most likely tokens, so this takes a
top-k first and sorts the full row only when the top-k mass falls short of `top_p` (keeping the result exact).
"""
from __future__ import annotations

import torch
from transformers import LogitsProcessor


class FastTopP(LogitsProcessor):
    """Exact top-p filtering (same kept set as TopPLogitsWarper) via a top-k pre-selection."""

    def __init__(self, top_p: float, candidates: int = 256):
        self.top_p, self.candidates = top_p, candidates

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        """Mask every token outside the smallest set whose probability reaches `top_p` (at least one kept)."""
        k = min(self.candidates, scores.shape[-1])
        top, index = scores.topk(k, dim=-1)
        probs = (top - scores.logsumexp(dim=-1, keepdim=True)).exp()  # probabilities under the full softmax
        cumulative = probs.cumsum(dim=-1)
        if bool((cumulative[:, -1] < self.top_p).any()) and k < scores.shape[-1]:
            return FastTopP(self.top_p, scores.shape[-1])(input_ids, scores)  # rare: nucleus wider than k
        keep = (cumulative - probs) < self.top_p  # mass strictly before a token is below top_p
        keep[:, 0] = True
        filtered = torch.full_like(scores, float("-inf"))
        return filtered.scatter(-1, index, top.masked_fill(~keep, float("-inf")))
