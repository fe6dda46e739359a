"""Pair and order bookkeeping of model-vs-model judgments, and their Elo / win-rate summaries per axis.

Every pair of models (in the order the node lists them) is judged on every prompt of a set under each of that set's
axes. A judgment scores `ensemble` sampled principles, each in both orders (model_a's answer shown as (A), then as
(B)); P(model_a better) averages the orders within a principle, then the principles (label_preferences' math).
Identical answers need no judge: they are a tie (0.5). The outcome fed to Bradley-Terry and the win rates is hard
(1 / 0, 0.5 on an exact tie), like the paper's crowdworker choices, or soft (P itself) with `outcome=soft`.
"""
from __future__ import annotations

from itertools import combinations
from typing import Any, Dict, List, Sequence

from cai.eval.elo import Comparison, elo_ratings, win_rates
from cai.feedback import labels

OUTCOMES = ("hard", "soft")


def model_pairs(models: Sequence[str]) -> List[tuple]:
    """Every unordered pair of models once, oriented by the models' order."""
    return list(combinations(models, 2))


def jobs(prompts: List[dict], answers: Dict[str, Dict[str, str]], models: Sequence[str],
         axes: Dict[str, List[str]]) -> List[dict]:
    """One judgment per (prompt, axis of its set, model pair); `answers[model][prompt id]` is the model's answer."""
    out = []
    for p in prompts:
        for axis in axes.get(p["set"], []):
            for a, b in model_pairs(models):
                out.append({"id": f"{p['id']}|{axis}|{a}|{b}", "prompt_id": p["id"], "prompt": p["prompt"],
                            "axis": axis, "model_a": a, "model_b": b,
                            "answers": [answers[a][p["id"]], answers[b][p["id"]]]})
    return out


def p_a_better(orders: List[dict]) -> float:
    """P(model_a better) from scored orders `{principle_id, order: AB | BA, p_a}`, grouped by principle."""
    by_principle: Dict[str, List[float]] = {}
    for o in orders:
        by_principle.setdefault(o["principle_id"], []).append(
            labels.p_first([o["p_a"], 1.0 - o["p_a"]], o["order"] == "BA"))
    return labels.combine(list(by_principle.values()))


def outcome(p: float, kind: str) -> float:
    """The comparison score for Elo and win rates: hard (1, 0, 0.5 on an exact tie) or soft (p)."""
    if kind == "soft":
        return p
    return 1.0 if p > 0.5 else 0.0 if p < 0.5 else 0.5


def comparisons(judged: List[dict], axis: str) -> List[Comparison]:
    """The axis' judgments as Bradley-Terry comparisons, bootstrapped by prompt."""
    return [Comparison(j["model_a"], j["model_b"], j["score"], prompt=j["prompt_id"]) for j in judged
            if j["axis"] == axis]


def judge_diagnostics(judged: List[dict]) -> Dict[str, Any]:
    """How far to trust the judge on these answers: A/B order agreement, position bias, ties (None: nothing was
    put to the judge, every pair of answers was identical)."""
    asked = [j for j in judged if not j.get("identical")]
    swapped = [(ab["p_a"], 1.0 - ba["p_a"]) for j in asked for ab, ba in zip(j["orders"][::2], j["orders"][1::2])]
    p_a = [o["p_a"] for j in asked for o in j["orders"]]
    return {"judgments": len(judged), "identical_answer_ties": len(judged) - len(asked),
            "order_agreement": labels.order_agreement(swapped) if asked else None,
            "position_bias": labels.position_bias(p_a) if asked else None,
            "mean_confidence": labels.mean([max(j["p_a_better"], 1.0 - j["p_a_better"]) for j in asked])
            if asked else None}


def summarize(judged: List[dict], axes: Sequence[str], reference, samples: int, seed: int) -> Dict[str, Any]:
    """`elo`, `win_rates` and `judge` per axis, in the shape cai/report/build.py reads."""
    out: Dict[str, Any] = {"elo": {}, "win_rates": {}, "judge": {}}
    for axis in axes:
        found = comparisons(judged, axis)
        if not found:
            continue
        out["elo"][axis] = elo_ratings(found, reference=reference, samples=samples, seed=seed)
        out["win_rates"][axis] = win_rates(found, samples=samples, seed=seed)
        out["judge"][axis] = judge_diagnostics([j for j in judged if j["axis"] == axis])
    return out
