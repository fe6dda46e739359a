"""Soft labels for response pairs (Bai et al. 2022, section 4.1), one code path for every labeling node and for
the judge audit that checks it: each comparison is scored under its principles, in one or both A/B orders, by the
one scorer (cai/feedback/scorer.py), then combined by the label math (cai/feedback/labels.py).

A comparison is `{id, prompt: [chat messages], responses: [first, second], category, source}`; its record is
`{id, prompt, chosen, rejected, p_chosen, p_chosen_unclamped, clamped, principle_ids, method, orders, ...}`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from cai.feedback import labels
from cai.feedback.scorer import Choice, pair_choices, score_choices
from cai.keys import example_seed


@dataclass(frozen=True)
class Judging:
    """How a judge is asked: the switches label_preferences exposes, read from any node that judges pairs."""

    method: str = "logprob"
    format: str = "auto"
    debias: str = "swap"
    clamp: Optional[bool] = None
    clamp_low: float = 0.4
    clamp_high: float = 0.6
    sampling: Any = None
    """Decoding of the CoT reasoning (method=cot)."""

    @classmethod
    def of(cls, node_cfg: Any, sampling: str = "sampling", **fixed: Any) -> "Judging":
        """The node's judging switches (fields it lacks keep the defaults); `fixed` overrides them."""
        found = {k: node_cfg.get(k) for k in ("method", "format", "debias", "clamp", "clamp_low", "clamp_high")
                 if k in node_cfg}
        return cls(**{**found, "sampling": node_cfg.get(sampling), **fixed})

    @property
    def orders(self) -> List[bool]:
        """Which orders are scored: both (swap) or the given one."""
        return [False, True] if self.debias == "swap" else [False]

    @property
    def clamps(self) -> bool:
        """Whether p is clamped: as asked, else only with CoT (section 4.1)."""
        return self.clamp if self.clamp is not None else self.method == "cot"


def build_choices(comparison: dict, principle_ids: List[str], principles: Dict[str, Any], context: dict,
                  judging: Judging) -> List[Choice]:
    """One Choice per (principle, order), in that order."""
    first, second = comparison["responses"]
    return [choice for pid in principle_ids for choice in pair_choices(
        comparison["prompt"], principles[pid]["text"], first, second, context, judging.orders)]


def score_comparisons(chunk: List[dict], picked: List[List[str]], principles: Dict[str, Any], context: dict,
                      judging: Judging, engine: Any, seed: int) -> List[dict]:
    """Score every (comparison, principle, order) of the chunk in one batched call, then combine per comparison;
    `picked[i]` are comparison i's principle ids. CoT reasoning is seeded per (comparison, principle, order)."""
    flat = [choice for c, ids in zip(chunk, picked) for choice in build_choices(c, ids, principles, context,
                                                                                judging)]
    n_orders = len(judging.orders)
    seeds = [example_seed(seed, f"{c['id']}|{pid}|{order}", "cot")
             for c, ids in zip(chunk, picked) for pid in ids for order in range(n_orders)]
    probs, reasons = score_choices(engine, flat, judging.method, judging.format, judging.sampling, seeds)
    records, at = [], 0
    for comparison, ids in zip(chunk, picked):
        orders = []
        for pid in ids:
            for swapped in range(n_orders):
                orders.append({"principle_id": pid, "order": "BA" if swapped else "AB", "p_a": probs[at][0]})
                if judging.method == "cot":
                    orders[-1]["reasoning"] = reasons[at]
                at += 1
        records.append(to_record(comparison, ids, orders, judging))
    return records


def to_record(comparison: dict, principle_ids: List[str], orders: List[dict], judging: Judging) -> dict:
    """Combine one comparison's scored orders: swap average, then ensemble mean, clamp, and pick the winner."""
    n = len(orders) // len(principle_ids)  # orders come grouped by principle
    by_principle = [[labels.p_first([o["p_a"], 1.0 - o["p_a"]], o["order"] == "BA") for o in orders[k:k + n]]
                    for k in range(0, len(orders), n)]
    p_first = raw = labels.combine(by_principle)
    if judging.clamps:
        p_first = labels.clamp(raw, judging.clamp_low, judging.clamp_high)
    winner, p_chosen = labels.to_label(p_first)
    return {"id": comparison["id"], "prompt": comparison["prompt"], "chosen": comparison["responses"][winner],
            "rejected": comparison["responses"][1 - winner], "p_chosen": p_chosen,
            "p_chosen_unclamped": raw if winner == 0 else 1.0 - raw,
            "clamped": p_first != raw, "principle_ids": principle_ids, "method": judging.method, "orders": orders,
            "category": comparison.get("category", ""), "source": comparison.get("source", "")}
