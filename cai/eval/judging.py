"""The evaluate stage's judge calls: model-vs-model judgments in both A/B orders, and the refusal question, each
scored in batched chunks by the one scorer (cai/feedback/scorer.py) and appended to disk so a rerun resumes."""
from __future__ import annotations

from typing import Dict, List

from cai.chunks import resumable_chunks
from cai.constitution import pick_principles
from cai.eval import matchups, refusal
from cai.feedback.scorer import pair_choices, score_choices
from cai.keys import example_seed, stable_rng
from cai.stage_api import StageContext

REFUSAL_SETS = ("helpful", "overrefusal")
"""Prompt sets whose answers the judge is asked about: does it refuse?"""


def judge_chunk(chunk: List[dict], ctx: StageContext, engine) -> List[dict]:
    """Score the chunk's judgments in one batched call: per judgment, `ensemble` principles x both orders."""
    cfg, axes = ctx.cfg, ctx.context["axes"]
    picked, flat = {}, []
    for job in chunk:
        if job["answers"][0] == job["answers"][1]:
            continue  # identical answers: a tie, nothing to ask
        picked[job["id"]] = pick_principles(axes[job["axis"]], cfg.ensemble, stable_rng(ctx.seed, job["id"], "p"))
        chat = [{"role": "user", "content": job["prompt"]}]
        flat += [c for pid in picked[job["id"]] for c in pair_choices(chat, axes[job["axis"]][pid]["text"],
                                                                     *job["answers"], ctx.context)]
    seeds = [example_seed(ctx.seed, f"{job_id}|{pid}|{order}", "cot")
             for job_id, ids in picked.items() for pid in ids for order in (0, 1)]
    probs, _ = score_choices(engine, flat, cfg.method, cfg.format, cfg.judge_sampling, seeds) if flat else ([], [])
    out, at = [], 0
    for job in chunk:
        ids = picked.get(job["id"], [])
        orders = [{"principle_id": pid, "order": order, "p_a": probs[at + 2 * n + k][0]}
                  for n, pid in enumerate(ids) for k, order in enumerate(("AB", "BA"))]
        at += len(orders)
        p = matchups.p_a_better(orders) if orders else 0.5
        out.append({key: job[key] for key in ("id", "prompt_id", "axis", "model_a", "model_b")} | {
            "orders": orders, "identical": not orders, "p_a_better": p, "score": matchups.outcome(p, cfg.outcome)})
    return out


def judge_refusals(ctx: StageContext, engine, prompts: List[dict], answers: Dict[str, Dict[str, str]],
                   models: List[str]) -> Dict[str, Dict[str, float]]:
    """P(refuses) by the judge for every model's answer to a helpful or over-refusal prompt: {model: {prompt id:
    p}}."""
    items = [{"id": f"{p['id']}|{m}", "prompt": p["prompt"], "model": m, "prompt_id": p["id"]}
             for p in prompts if p["set"] in REFUSAL_SETS for m in models]

    def score(chunk: List[dict]) -> List[dict]:
        flat = [c for it in chunk for c in refusal.judge_choices(it["prompt"], answers[it["model"]][it["prompt_id"]])]
        seeds = [example_seed(ctx.seed, it["id"], f"refusal{order}") for it in chunk for order in (0, 1)]
        probs, _ = score_choices(engine, flat, ctx.cfg.method, ctx.cfg.format, ctx.cfg.judge_sampling, seeds)
        return [{"id": it["id"], "p_refusal": refusal.p_refusal(probs[2 * n], probs[2 * n + 1])}
                for n, it in enumerate(chunk)]

    rows, _ = resumable_chunks(ctx, items, engine, score, "answers", "refusals.jsonl") if items else ([], {})
    out: Dict[str, Dict[str, float]] = {m: {} for m in models}
    for item, row in zip(items, rows):
        out[item["model"]][item["prompt_id"]] = row["p_refusal"]
    return out
