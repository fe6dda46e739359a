"""RL-CAI preference labels from a feedback model (Bai et al. 2022, section 4.1): for each pair of responses the
judge answers a multiple-choice question under a sampled comparison principle, and the normalized probabilities of
its options are the soft label. Each choice is its own switch, so it can be ablated:

- `method`: logprob (the options' probabilities) or cot (the judge reasons first; probabilities clamped, 4.1/4.3)
- `ensemble`: average over k sampled principles (the paper ensembles over 16)
- `debias`: swap scores both A/B orders and averages them (and measures the position bias); none scores one
- `fewshot`: the constitution's labeling (or CoT) exemplars before the question
- `format`: raw text (base models), the judge's chat template (chat models), or auto

`audit` (on by default) scores known-answer comparisons with the same judge and switches (cai/feedback/audit.py),
so the report can say whether these labels beat a coin.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from cai.chunks import read_jsonl
from cai.constitution import pick_principles
from cai.errors import CaiError
from cai.feedback import audit as auditing
from cai.feedback.context import labeling_context as constitution_context
from cai.feedback.export import export, summarize
from cai.feedback.labeling import Judging, score_comparisons
from cai.feedback.scorer import judge_needs
from cai.feedback.switches import JudgeSwitches, check_switches
from cai.keys import stable_rng
from cai.registry import stage
from cai.shards import sharded_chunks
from cai.stage_api import ShardedStageConfig, StageContext

PAIRINGS = ("all", "adjacent")


@dataclass
class LabelPreferencesInputs:
    pairs: str = "pairs"
    """A sample_pairs node."""
    judge: str = "models.judge"
    """The feedback model."""


@dataclass
class LabelPreferencesConfig(ShardedStageConfig, JudgeSwitches):
    """label_preferences' fields; the judging switches (method, ensemble, debias, ...) are JudgeSwitches'."""

    kind: str = "label_preferences"
    inputs: LabelPreferencesInputs = field(default_factory=LabelPreferencesInputs)
    pairing: str = "all"
    """all: every pair of a prompt's k responses; adjacent: responses (0,1), (1,2), ..."""
    limit: Optional[int] = None
    """Label only the first N comparisons."""
    chunk_size: int = 64
    """Comparisons per chunk; each finished chunk is appended to disk, so a killed run resumes."""
    audit: bool = True
    """Also score known-answer comparisons (audit_set) with this judge and these switches: metrics.json `audit`
    (accuracy with its 95% interval, order agreement, position bias, calibration) and the report's verdict."""
    audit_set: str = auditing.AUDIT_SET
    """The known-answer comparisons (source URI; rows {id, kind, category, prompt, better, worse})."""
    audit_limit: Optional[int] = auditing.AUDIT_LIMIT
    """Audit items scored (spread over kinds and categories); null: all of them."""


def check(node_cfg, where: str) -> None:
    """Plan-time checks of the switches."""
    check_switches(node_cfg, where)
    if node_cfg.pairing not in PAIRINGS:
        raise CaiError(f"{where}.pairing: {node_cfg.pairing!r} unknown; available: {', '.join(PAIRINGS)}")


def audit_ref(node_cfg) -> Dict[str, tuple]:
    """The `refs` hook: the audit set is a keyed source input (its content hash is in the node key)."""
    return {"audit": (node_cfg.audit_set, "audit_set")} if node_cfg.audit else {}


@stage("label_preferences", schema=LabelPreferencesConfig, version=3, produces="preferences",
       consumes={"pairs": ("pairs",), "judge": ("model",), "audit": ("data",)}, context=constitution_context,
       refs=audit_ref, check=check, needs=lambda node_cfg: {"judge": judge_needs(node_cfg.method)})
def label_preferences(ctx: StageContext) -> Dict[str, Any]:
    """Soft-labelled `{id, prompt, chosen, rejected, p_chosen, ...}` records into data.jsonl (resuming), and hf/;
    then the judge audit into audit.jsonl (resuming) and metrics.json `audit`."""
    cfg = ctx.cfg
    todo_all, skipped = comparisons(read_jsonl(ctx.inputs["pairs"].path / "data.jsonl"), cfg.pairing)
    todo_all = todo_all[:cfg.limit] if cfg.limit else todo_all
    if not todo_all:
        raise CaiError(f"pipeline.{ctx.node}: no response pairs to label in {ctx.inputs['pairs'].path} "
                       f"({skipped} pairs of identical responses skipped)")
    records, rates = sharded_chunks(ctx, todo_all, "judge", label_chunk, "comparisons")
    audited, audit_seconds = {}, 0.0
    if cfg.audit:  # the same judge again, in this process (shards may have run elsewhere)
        started = time.perf_counter()
        with ctx.engine("judge") as engine:
            audited = run_audit(ctx, engine)
        audit_seconds = time.perf_counter() - started
    export(records, ctx)
    return {**summarize(records), "skipped_identical_pairs": skipped, "method": cfg.method,
            "ensemble": cfg.ensemble, "debias": cfg.debias, "comparisons_per_s": rates["prompts_per_s"],
            "scored_prompt_tokens": rates["prompt_tokens"], **rates,
            **({"audit": audited, "audit_wall_s": audit_seconds} if cfg.audit else {})}


def run_audit(ctx: StageContext, engine) -> Dict[str, Any]:
    """The judge audit with exactly this node's judge, principles, exemplars and switches."""
    cfg = ctx.cfg
    return auditing.run(ctx, engine, ctx.context["principles"], Judging.of(cfg), cfg.ensemble, cfg.audit_set,
                        cfg.audit_limit, f"pipeline.{ctx.node}.audit_set")


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


def label_chunk(chunk: List[dict], ctx: StageContext, engine) -> List[dict]:
    """Sample each comparison's principles (seeded by its id), then score and combine them (feedback/labeling)."""
    principles = ctx.context["principles"]
    picked = [pick_principles(principles, ctx.cfg.ensemble, stable_rng(ctx.seed, c["id"], "principles"))
              for c in chunk]
    return score_comparisons(chunk, picked, principles, ctx.context, Judging.of(ctx.cfg), engine, ctx.seed)
