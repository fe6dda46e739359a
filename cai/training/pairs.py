"""Preference pairs for the dpo and reward_model stages: each mixture source's usable prompt/chosen/rejected pairs,
with the feedback model's soft label where the source has one, mixed by weight."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from cai.chunks import read_jsonl
from cai.errors import CaiError
from cai.stage_api import StageContext
from cai.training import examples, mixture


def read_pairs(inp) -> List[Any]:
    """Rows of one source; a preferences artifact's p_chosen is taken from data.jsonl when hf/ lacks it."""
    rows = mixture.read_source(inp)
    if inp.kind == "node" and rows and isinstance(rows[0], dict) and "p_chosen" not in rows[0]:
        labeled = read_jsonl(inp.path / "data.jsonl")
        if len(labeled) == len(rows) and all("p_chosen" in r for r in labeled):
            rows = [dict(row, p_chosen=r["p_chosen"]) for row, r in zip(rows, labeled)]
    return rows


def keep(pair: Optional[dict], min_p: Optional[float], counts: Dict[str, int]) -> bool:
    """Whether a pair carries a usable preference; counts why the others were dropped."""
    p = None if pair is None else 1.0 if pair["p_chosen"] is None else pair["p_chosen"]
    reason = ("unusable" if pair is None else "identical" if pair["chosen"] == pair["rejected"]
              else "low_p_chosen" if min_p is not None and p < min_p else None)
    if reason:
        counts[reason] = counts.get(reason, 0) + 1
    return reason is None


def load_pairs(ctx: StageContext) -> Tuple[mixture.Mixture, Dict[str, int]]:
    """The weighted mixture of every source's usable pairs, and how many were dropped and why."""
    parts, dropped = [], {}
    for i, part in enumerate(ctx.cfg.mixture):
        rows = read_pairs(ctx.inputs[f"mixture.{i}"])
        pairs = [p for p in map(examples.preference_pair, rows) if keep(p, ctx.cfg.min_p_chosen, dropped)]
        if not pairs:
            raise CaiError(f"pipeline.{ctx.node}.mixture.{i}: no usable prompt/chosen/rejected pairs in "
                           f"{part.source!r} ({len(rows)} rows)")
        parts.append((part.source, pairs, part.weight))
    return mixture.mix(parts, ctx.seed, ctx.cfg.eval_fraction, ctx.cfg.eval_max), dropped
