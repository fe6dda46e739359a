"""A judge's known-answer audit on its own (Bai et al. 2022, sec. 4.2, figure 4: how good is the feedback model?):
the audit every labeling node runs (cai/feedback/audit.py), for any model spec, over the whole set by default.
Its switches are label_preferences' own, so `recipe=judge_audit` tells what a labeling node with them would get.

    python -m cai recipe=judge_audit                                   # the embedded SmolLM2 as judge
    python -m cai recipe=judge_audit model@models.judge=mistral_7b_instruct pipeline.audit.method=cot
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from cai.chunks import read_jsonl
from cai.errors import CaiError
from cai.feedback import audit as auditing
from cai.feedback.context import labeling_context
from cai.feedback.labeling import Judging
from cai.feedback.scorer import judge_needs
from cai.feedback.switches import JudgeSwitches, check_switches
from cai.feedback.verdict import judge_verdict
from cai.registry import stage
from cai.stage_api import StageConfig, StageContext


@dataclass
class JudgeAuditInputs:
    judge: str = "models.judge"
    """The feedback model under audit: a model role, or a node producing a model."""
    audit_set: str = auditing.AUDIT_SET
    """Known-answer comparisons (source URI; rows {id, kind, category, prompt, better, worse})."""


@dataclass
class JudgeAuditConfig(StageConfig, JudgeSwitches):
    """judge_audit's fields; the judging switches are JudgeSwitches', as label_preferences has them."""

    kind: str = "judge_audit"
    inputs: JudgeAuditInputs = field(default_factory=JudgeAuditInputs)
    limit: Optional[int] = None
    """Audit only N items (spread over kinds and categories); null: every item."""
    chunk_size: int = 32
    """Comparisons per chunk; each finished chunk is appended to disk, so a killed run resumes."""


@stage("judge_audit", schema=JudgeAuditConfig, version=1, produces="eval",
       consumes={"judge": ("model",), "audit_set": ("data",)}, context=labeling_context, check=check_switches,
       needs=lambda node_cfg: {"judge": judge_needs(node_cfg.method)})
def judge_audit(ctx: StageContext) -> Dict[str, Any]:
    """audit.jsonl (resuming) and metrics.json `audit`: accuracy with its interval, order agreement, calibration."""
    cfg = ctx.cfg
    with ctx.engine("judge") as engine:
        found = auditing.run(ctx, engine, ctx.context["principles"], Judging.of(cfg), cfg.ensemble,
                             cfg.inputs.audit_set, cfg.limit, f"pipeline.{ctx.node}.inputs.audit_set")
    if not found["items"]:
        raise CaiError(f"pipeline.{ctx.node}: no audit item fits the selected comparison principles "
                       f"(skipped per kind: {found['skipped']}); select principles tagged harmless, helpful or honest")
    write_samples(read_jsonl(ctx.workdir / "audit.jsonl"), ctx)
    verdict = judge_verdict(found, ctx.node)
    return {"audit": found, "verdict": verdict.label, "accuracy": found["accuracy"], "low": found["low"],
            "high": found["high"], "order_agreement": found["order_agreement"]}


def write_samples(rows: List[dict], ctx: StageContext) -> None:
    """samples.md: the items the judge got wrong first, then the rest, with what each order scored."""
    shown = sorted(rows, key=lambda r: r["correct"])[:ctx.cfg.num_samples]
    lines = [f"# {ctx.node}: judge audit ({len(shown)} of {len(rows)} items, wrong ones first)", ""]
    for row in shown:
        state = {1.0: "right", 0.0: "WRONG", 0.5: "tie"}[row["correct"]]
        lines += [f"## {row['id']} ({row['kind']}, {row['category'] or 'no category'}): {state}, "
                  f"P(better)={row['p_better']:.3f}", "", f"**Prompt:** {row['prompt'][-1]['content']}", "",
                  f"**Chosen:** {row['chosen']}", "", f"**Rejected:** {row['rejected']}", ""]
        lines += [f"- `{o['principle_id']}` {o['order']}: P(A)={o['p_a']:.3f}" for o in row["orders"]] + [""]
    (ctx.workdir / "samples.md").write_text("\n".join(lines), encoding="utf-8")

