"""RL-CAI preference labels from a feedback model (Bai et al. 2022, section 4.1): for each pair of responses the
judge answers a multiple-choice question under a sampled comparison principle, and the normalized probabilities of
its options are the soft label. Each choice is its own switch, so it can be ablated:

- `method`: logprob (the options' probabilities) or cot (the judge reasons first; probabilities clamped, 4.1/4.3)
- `ensemble`: average over k sampled principles (the paper ensembles over 16)
- `debias`: swap scores both A/B orders and averages them (and measures the position bias); none scores one
- `fewshot`: the constitution's labeling (or CoT) exemplars before the question
- `format`: raw text (base models), the judge's chat template (chat models), or auto
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import OmegaConf

from cai.chunks import read_jsonl
from cai.constitution import pick_principles, selected_ids
from cai.errors import CaiError
from cai.feedback import labels
from cai.feedback.context import fewshot_context
from cai.feedback.export import export, summarize
from cai.feedback.scorer import Choice, check_choice_config, judge_needs, pair_choices, score_choices
from cai.keys import example_seed, stable_rng
from cai.registry import stage
from cai.shards import sharded_chunks
from cai.schema import Sampling
from cai.stage_api import ShardedStageConfig, StageContext

PAIRINGS = ("all", "adjacent")
DEBIAS = ("swap", "none")


@dataclass
class LabelPreferencesInputs:
    pairs: str = "pairs"
    """A sample_pairs node."""
    judge: str = "models.judge"
    """The feedback model."""


@dataclass
class LabelPreferencesConfig(ShardedStageConfig):
    kind: str = "label_preferences"
    inputs: LabelPreferencesInputs = field(default_factory=LabelPreferencesInputs)
    method: str = "logprob"
    """logprob: option probabilities; cot: reasoning after "Let's think step by step:", then the answer scored."""
    ensemble: int = 4
    """Principles sampled per comparison (without replacement while they last); probabilities averaged (the paper
    ensembles over 16; 4 keeps most of the gain at a quarter of the cost)."""
    debias: str = "swap"
    """swap: score both A/B orders and average; none: one order."""
    pairing: str = "all"
    """all: every pair of a prompt's k responses; adjacent: responses (0,1), (1,2), ..."""
    format: str = "auto"
    """auto (chat when the judge has a chat template), raw (the paper's plain text), chat. CoT always uses chats."""
    fewshot: bool = True
    """Labeling exemplars (method=logprob) or CoT exemplars (method=cot) from the constitution, before the question."""
    clamp: Optional[bool] = None
    """Clamp p into [clamp_low, clamp_high]; null: only with method=cot (section 4.1)."""
    clamp_low: float = 0.4
    clamp_high: float = 0.6
    sampling: Sampling = field(default_factory=Sampling)
    """Decoding of the CoT reasoning."""
    limit: Optional[int] = None
    """Label only the first N comparisons."""
    chunk_size: int = 64
    """Comparisons per chunk; each finished chunk is appended to disk, so a killed run resumes."""


def constitution_context(cfg, node_cfg) -> Dict[str, Any]:
    """The constitution parts this stage reads: the selected comparison principles, and the exemplars it uses."""
    constitution = cfg.constitution
    comparison = OmegaConf.to_container(constitution.comparison, resolve=True)
    ids = selected_ids(comparison, list(constitution.comparison_select), "constitution.comparison_select")
    out = {"constitution": constitution.name, "principles": {i: comparison[i] for i in ids}}
    return {**out, **fewshot_context(constitution, comparison, node_cfg)}


def check(node_cfg, where: str) -> None:
    """Plan-time checks of the switches."""
    check_choice_config(node_cfg, where)
    for key, allowed in (("debias", DEBIAS), ("pairing", PAIRINGS)):
        if node_cfg[key] not in allowed:
            raise CaiError(f"{where}.{key}: {node_cfg[key]!r} unknown; available: {', '.join(allowed)}")
    if node_cfg.ensemble < 1:
        raise CaiError(f"{where}.ensemble: must be >= 1, got {node_cfg.ensemble}")
    if not 0.0 <= node_cfg.clamp_low <= 0.5 <= node_cfg.clamp_high <= 1.0:
        raise CaiError(f"{where}.clamp_low/clamp_high: need 0 <= low <= 0.5 <= high <= 1, got "
                       f"{node_cfg.clamp_low}, {node_cfg.clamp_high}")


@stage("label_preferences", schema=LabelPreferencesConfig, version=2, produces="preferences",
       consumes={"pairs": ("pairs",), "judge": ("model",)}, context=constitution_context, check=check,
       needs=lambda node_cfg: {"judge": judge_needs(node_cfg.method)})
def label_preferences(ctx: StageContext) -> Dict[str, Any]:
    """Soft-labelled `{id, prompt, chosen, rejected, p_chosen, ...}` records into data.jsonl (resuming), and hf/."""
    cfg = ctx.cfg
    todo_all, skipped = comparisons(read_jsonl(ctx.inputs["pairs"].path / "data.jsonl"), cfg.pairing)
    todo_all = todo_all[:cfg.limit] if cfg.limit else todo_all
    if not todo_all:
        raise CaiError(f"pipeline.{ctx.node}: no response pairs to label in {ctx.inputs['pairs'].path} "
                       f"({skipped} pairs of identical responses skipped)")
    records, rates = sharded_chunks(ctx, todo_all, "judge", label_chunk, "comparisons")
    export(records, ctx)
    return {**summarize(records), "skipped_identical_pairs": skipped, "method": cfg.method,
            "ensemble": cfg.ensemble, "debias": cfg.debias, "comparisons_per_s": rates["prompts_per_s"],
            "scored_prompt_tokens": rates["prompt_tokens"], **rates}


def form_pairs(k: int, pairing: str) -> List[tuple]:
    """Index pairs of k responses: all (i < j), or adjacent (i, i + 1)."""
    if pairing == "adjacent":
        return [(i, i + 1) for i in range(k - 1)]
    return [(i, j) for i in range(k) for j in range(i + 1, k)]


def comparisons(records: List[dict], pairing: str) -> tuple:
    """(comparisons, skipped): one per response pair; pairs of identical texts carry no preference and are skipped."""
    out, skipped = [], 0
    for record in records:
        for i, j in form_pairs(len(record["responses"]), pairing):
            first, second = record["responses"][i], record["responses"][j]
            if first.strip() == second.strip():
                skipped += 1
                continue
            out.append({"id": f"{record['id']}:{i}-{j}", "prompt": record["prompt"], "responses": [first, second],
                        "category": record.get("category", ""), "source": record.get("source", "")})
    return out, skipped


def build_choices(comparison: dict, principle_ids: List[str], ctx: StageContext) -> List[Choice]:
    """One Choice per (principle, order), in that order."""
    orders = [False, True] if ctx.cfg.debias == "swap" else [False]
    first, second = comparison["responses"]
    return [choice for pid in principle_ids for choice in pair_choices(
        comparison["prompt"], ctx.context["principles"][pid]["text"], first, second, ctx.context, orders)]


def label_chunk(chunk: List[dict], ctx: StageContext, engine) -> List[dict]:
    """Score every (comparison, principle, order) of the chunk in one batched call, then combine per comparison."""
    cfg = ctx.cfg
    picked = [pick_principles(ctx.context["principles"], cfg.ensemble, stable_rng(ctx.seed, c["id"], "principles"))
              for c in chunk]
    choices = [build_choices(c, ids, ctx) for c, ids in zip(chunk, picked)]
    flat = [choice for group in choices for choice in group]
    n_orders = 2 if cfg.debias == "swap" else 1
    seeds = [example_seed(ctx.seed, f"{c['id']}|{pid}|{order}", "cot")
             for c, ids in zip(chunk, picked) for pid in ids for order in range(n_orders)]
    probs, reasons = score_choices(engine, flat, cfg.method, cfg.format, cfg.sampling, seeds)
    records, at = [], 0
    for comparison, ids in zip(chunk, picked):
        orders = []
        for pid in ids:
            for swapped in range(n_orders):
                orders.append({"principle_id": pid, "order": "BA" if swapped else "AB", "p_a": probs[at][0]})
                if cfg.method == "cot":
                    orders[-1]["reasoning"] = reasons[at]
                at += 1
        records.append(to_record(comparison, ids, orders, cfg))
    return records


def to_record(comparison: dict, principle_ids: List[str], orders: List[dict], cfg) -> dict:
    """Combine one comparison's scored orders: swap average, then ensemble mean, clamp, and pick the winner."""
    n = len(orders) // len(principle_ids)  # orders come grouped by principle
    by_principle = [[labels.p_first([o["p_a"], 1.0 - o["p_a"]], o["order"] == "BA") for o in orders[k:k + n]]
                    for k in range(0, len(orders), n)]
    p_first = raw = labels.combine(by_principle)
    clamp = cfg.clamp if cfg.clamp is not None else cfg.method == "cot"
    if clamp:
        p_first = labels.clamp(raw, cfg.clamp_low, cfg.clamp_high)
    winner, p_chosen = labels.to_label(p_first)
    return {"id": comparison["id"], "prompt": comparison["prompt"], "chosen": comparison["responses"][winner],
            "rejected": comparison["responses"][1 - winner], "p_chosen": p_chosen,
            "p_chosen_unclamped": raw if winner == 0 else 1.0 - raw,
            "clamped": p_first != raw, "principle_ids": principle_ids, "method": cfg.method, "orders": orders,
            "category": comparison["category"], "source": comparison["source"]}
