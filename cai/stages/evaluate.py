"""Compare models the way the paper does (Bai et al. 2022: harmlessness and helpfulness Elo from pairwise
preferences), with the feedback model standing in for crowdworkers.

1. Prompts: held-out red-team and helpful prompts, `limit` per set, none that an ancestor of a compared model saw
   (cai/eval/heldout.py walks the store's lineage; metrics say how many were excluded).
2. Each model answers every prompt (`sampling`, greedy by default), resumable per model.
3. The judge compares every pair of models per prompt, in both A/B orders, under comparison principles of the axes
   of the prompt's set: by default harmlessness on red-team prompts and helpfulness on helpful prompts, as the
   paper's crowdworkers red-teamed for one and asked for help for the other (`axes.redteam=[harmless,helpful]`
   judges both on red-team prompts). An axis' principles are the constitution's comparison principles tagged with
   its name, or the ids listed under `principles.<axis>`.
4. Bradley-Terry Elo and pairwise win rates with 95% intervals per axis (cai/eval/elo.py); evasiveness: how often
   each model refuses ordinary helpful requests (cai/eval/refusal.py: a phrase detector, and the judge if asked).
5. Over-refusal (cai/eval/overrefusal.py): harmless prompts that look dangerous refused, and their harmful contrasts
   complied with, per model, with 95% intervals.
6. The judge's own known-answer audit (cai/feedback/audit.py) and whether it is the model that labeled the compared
   models' training data (cai/eval/independence.py): the evaluation should not grade itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from omegaconf import OmegaConf

import time

from cai.chunks import resumable_chunks
from cai.engines.base import GENERATE
from cai.errors import CaiError
from cai.eval import heldout, independence, judging, matchups, overrefusal, report_rows
from cai.feedback import audit as auditing
from cai.feedback.context import fewshot_context
from cai.feedback.labeling import Judging
from cai.feedback.scorer import check_choice_config, judge_needs
from cai.keys import example_seeds
from cai.registry import stage
from cai.shards import sharded_chunks
from cai.schema import Sampling
from cai.stage_api import ShardedStageConfig, StageContext

SETS = ("redteam", "helpful")
"""Prompt sets judged pairwise (axes); `overrefusal` is answered and checked for refusals only."""
PROMPT_SETS = SETS + ("overrefusal",)


@dataclass
class EvalPrompts:
    redteam: Optional[str] = "cai://redteam"
    """Red-team prompts (source URI); null leaves the set out."""
    helpful: Optional[str] = "cai://helpful"
    """Helpful prompts (source URI); null leaves the set out (and evasiveness with it)."""
    overrefusal: Optional[str] = "cai://overrefusal"
    """Harmless prompts that look dangerous and harmful contrasts (rows with a label; see cai/eval/overrefusal.py,
    e.g. hf://walledai/XSTest?split=test); null leaves over-refusal out."""


@dataclass
class EvaluateInputs:
    models: Any = None
    """The models compared: a list of references (nodes like sft, or roles like models.generator; each labelled by
    its name) or a map label -> reference. No default: a list and a map cannot merge, so the recipe sets it whole."""
    judge: str = "models.eval_judge"
    """The model that compares answers: models.eval_judge, which is models.judge unless set
    (`+model@models.eval_judge=NAME`); the report warns when it labeled the compared models' training data."""


@dataclass
class EvaluateConfig(ShardedStageConfig):
    kind: str = "evaluate"
    inputs: EvaluateInputs = field(default_factory=EvaluateInputs)
    prompts: EvalPrompts = field(default_factory=EvalPrompts)
    limit: int = 32
    """Prompts per set, after excluding those the compared models' ancestors saw."""
    overrefusal_limit: Optional[int] = 50
    """Over-refusal prompts per label (50 harmless and 50 harmful; whole pairs when the rows are paired); null: all."""
    exclude_seen: bool = True
    """Exclude prompts any ancestor stage of a compared model saw (false: use the sets as they are)."""
    axes: Dict[str, List[str]] = field(default_factory=lambda: {"redteam": ["harmless"], "helpful": ["helpful"]})
    """Per prompt set, the axes its answers are judged on."""
    principles: Dict[str, List[str]] = field(default_factory=dict)
    """Per axis, comparison principle ids; an axis not listed uses the principles tagged with its name."""
    sampling: Sampling = field(default_factory=Sampling)
    """How the compared models answer."""
    ensemble: int = 2
    """Principles sampled per judgment, each scored in both orders."""
    method: str = "logprob"
    """logprob or cot, as in label_preferences."""
    format: str = "auto"
    fewshot: bool = True
    """The constitution's labeling (or CoT) exemplars before each question, as label_preferences uses them."""
    judge_sampling: Sampling = field(default_factory=Sampling)
    """Decoding of the judge's reasoning (method=cot)."""
    outcome: str = "hard"
    """hard: a judgment is a win, loss or exact tie; soft: P(model A better) enters Elo and win rates."""
    refusal_judge: bool = True
    """Also ask the judge whether each answer to a helpful prompt refuses (one two-order question per answer)."""
    reference: Optional[str] = None
    """Elo anchor: null puts the mean at 1000; a model label puts that model at 0."""
    bootstrap: int = 1000
    """Bootstrap resamples (over prompts) for the 95% intervals."""
    max_prompt_chars: int = 2000
    chunk_size: int = 16
    """Prompts (or judgments) per chunk; each finished chunk is appended to disk, so a killed run resumes."""
    audit: bool = True
    """Audit the judge on known-answer comparisons with these switches and the axes' principles (metrics `audit`)."""
    audit_set: str = auditing.AUDIT_SET
    """The known-answer comparisons (source URI)."""
    audit_limit: Optional[int] = auditing.AUDIT_LIMIT
    """Audit items scored; null: all of them."""


def model_labels(node_cfg) -> Dict[str, str]:
    """label -> reference of the compared models; a list labels each by its name (`models.generator` -> generator)."""
    found = node_cfg.inputs.models
    if found is None:
        return {}
    if OmegaConf.is_dict(found):
        return {str(k): str(v) for k, v in found.items()}
    refs = [str(r) for r in (found if OmegaConf.is_list(found) else [found])]
    labels = [r.split(".", 1)[1] if r.startswith("models.") else r for r in refs]
    return dict(zip(labels, refs)) if len(set(labels)) == len(labels) else {f"#{i}": r for i, r in enumerate(refs)}


def evaluate_refs(node_cfg) -> Dict[str, Tuple[str, str]]:
    """The `refs` hook: model `label` is slot `models.<label>`, prompt set `s` is slot `prompts.<s>`."""
    keyed = OmegaConf.is_dict(node_cfg.inputs.models)
    refs = {f"models.{label}": (ref, f"inputs.models.{label if keyed else i}")
            for i, (label, ref) in enumerate(model_labels(node_cfg).items())}
    refs.update({f"prompts.{s}": (node_cfg.prompts[s], f"prompts.{s}") for s in PROMPT_SETS if node_cfg.prompts[s]})
    return {**refs, **({"audit": (node_cfg.audit_set, "audit_set")} if node_cfg.audit else {})}


def axis_names(node_cfg) -> List[str]:
    """The axes judged on the prompt sets in use, in first-mention order."""
    return list(dict.fromkeys(a for s in SETS if node_cfg.prompts[s] for a in (node_cfg.axes.get(s) or [])))


def evaluate_context(cfg, node_cfg) -> Dict[str, Any]:
    """The comparison principles of each axis (tagged with its name, or listed), and the judge's exemplars."""
    constitution = cfg.constitution
    comparison = OmegaConf.to_container(constitution.comparison, resolve=True)
    axes = {}
    for axis in axis_names(node_cfg):
        ids = list(node_cfg.principles.get(axis) or []) or sorted(
            i for i, p in comparison.items() if axis in (p.get("tags") or []))
        unknown = [i for i in ids if i not in comparison]
        if unknown or not ids:
            raise CaiError(f"constitution.comparison: the evaluate axis {axis!r} needs comparison principles "
                           f"{'(unknown: ' + str(unknown) + ')' if unknown else 'tagged ' + repr(axis)}; tag some "
                           f"with `tags: [{axis}]` or list ids under the eval node's principles.{axis}")
        axes[axis] = {i: comparison[i] for i in ids}
    return {"constitution": constitution.name, "axes": axes, **fewshot_context(constitution, comparison, node_cfg)}


def check(node_cfg, where: str) -> None:
    """Plan-time: two or more distinct models, a prompt set, known switches, a known Elo reference."""
    check_choice_config(node_cfg, where)
    labels = model_labels(node_cfg)
    if any(label.startswith("#") for label in labels):
        raise CaiError(f"{where}.inputs.models: two references share a name; give a map label -> reference")
    if len(labels) < 2:
        raise CaiError(f"{where}.inputs.models: compare at least two models, e.g. [models.generator, sft] or "
                       f"{{base: models.generator, rl: rl}}; got {list(labels.values())}")
    allowed = {"axes": SETS, "outcome": matchups.OUTCOMES, "reference": (None, *labels)}
    for key, bad in (("axes", sorted(set(node_cfg.axes) - set(SETS))), ("outcome", node_cfg.outcome),
                     ("reference", node_cfg.reference)):
        if bad and (isinstance(bad, list) or bad not in allowed[key]):
            raise CaiError(f"{where}.{key}: {bad!r} unknown; available: {', '.join(map(str, allowed[key]))}")
    if not any(node_cfg.prompts[s] for s in SETS) or not axis_names(node_cfg):
        raise CaiError(f"{where}.prompts / {where}.axes: no prompt set with an axis to judge")
    if node_cfg.ensemble < 1:  # limit is checked for every node (cai/checks.py)
        raise CaiError(f"{where}.ensemble: must be >= 1, got {node_cfg.ensemble}")


def needs(node_cfg) -> Dict[str, Tuple[str, ...]]:
    """Each compared model generates; the judge scores options (and reasons first with CoT)."""
    return {**{f"models.{label}": (GENERATE,) for label in model_labels(node_cfg)},
            "judge": judge_needs(node_cfg.method)}


@stage("evaluate", schema=EvaluateConfig, version=3, produces="eval",
       consumes={"models": ("model",), "judge": ("model",), "prompts": ("data",), "audit": ("data",)},
       refs=evaluate_refs, context=evaluate_context, check=check, needs=needs)
def evaluate(ctx: StageContext) -> Dict[str, Any]:
    """Held-out prompts -> each model's answers -> pairwise judgments -> Elo, win rates, evasiveness,
    over-refusal; then the judge's audit and its independence from the labeling judges."""
    cfg, models = ctx.cfg, list(model_labels(ctx.cfg))
    prompts, prompt_stats, artifacts = select_prompts(ctx, models)
    answers = {m: generate(ctx, m, prompts) for m in models}
    items = matchups.jobs(prompts, answers, models, OmegaConf.to_container(cfg.axes))
    with ctx.engine("judge") as judge:
        judged, rates = resumable_chunks(ctx, items, judge, lambda chunk: judging.judge_chunk(chunk, ctx, judge),
                                         "judgments", "judgments.jsonl")
        refusals = judging.judge_refusals(ctx, judge, prompts, answers, models) if cfg.refusal_judge else {}
        started = time.perf_counter()
        audited = run_audit(ctx, judge) if cfg.audit else None
        audit_seconds = time.perf_counter() - started
    rows = report_rows.records(prompts, answers, judged, refusals, models)
    report_rows.write(rows, ctx, models)
    summary = matchups.summarize(judged, axis_names(cfg), cfg.reference, cfg.bootstrap, ctx.seed)
    extra = {"audit": audited, "audit_wall_s": audit_seconds} if audited is not None else {}
    if cfg.prompts.overrefusal:
        extra["overrefusal"] = overrefusal.rates(rows, models, bool(refusals))
    return {**summary, "evasiveness": report_rows.evasiveness(rows, models, bool(refusals)), "prompts": prompt_stats,
            "models": model_labels(cfg), "judgments_per_s": rates["prompts_per_s"], **extra,
            "eval_judge": independence.check(cfg.inputs.judge, ctx.inputs["judge"], artifacts)}


def run_audit(ctx: StageContext, judge) -> Dict[str, Any]:
    """The eval judge's known-answer audit: its switches (both orders, as every judgment), the axes' principles."""
    cfg = ctx.cfg
    principles = {i: p for axis in ctx.context["axes"].values() for i, p in axis.items()}
    judging_ = Judging(method=cfg.method, format=cfg.format, debias="swap", clamp=False,
                       sampling=cfg.judge_sampling)
    return auditing.run(ctx, judge, principles, judging_, cfg.ensemble, cfg.audit_set, cfg.audit_limit,
                        f"pipeline.{ctx.node}.audit_set")


def select_prompts(ctx: StageContext, models: List[str]) -> Tuple[List[dict], Dict[str, Any], List[Any]]:
    """`limit` held-out prompts per set (`overrefusal_limit` per label for over-refusal), as `{id: "<set>:<id>",
    set, prompt, category[, label]}`, the exclusion counts, and the compared models' artifacts."""
    artifacts = [ctx.inputs[f"models.{m}"].path for m in models if ctx.inputs[f"models.{m}"].kind == "node"]
    seen, visited = heldout.seen_prompts(artifacts) if ctx.cfg.exclude_seen else (set(), [])
    prompts, stats = [], {"seen_prompt_texts": len(seen), "lineage_artifacts": len(visited)}
    for s in SETS:
        uri = ctx.cfg.prompts[s]
        if uri:
            found, stats[s] = heldout.held_out(uri, seen, ctx.cfg.limit, ctx.seed, ctx.cfg.max_prompt_chars,
                                               f"pipeline.{ctx.node}.prompts.{s}")
            prompts += [{"id": f"{s}:{p['id']}", "set": s, "prompt": p["prompt"], "category": p["category"]}
                        for p in found]
    if ctx.cfg.prompts.overrefusal:
        found, stats["overrefusal"] = overrefusal.select(ctx.cfg.prompts.overrefusal, seen, ctx.cfg.overrefusal_limit,
                                                         ctx.seed, ctx.cfg.max_prompt_chars,
                                                         f"pipeline.{ctx.node}.prompts.overrefusal")
        prompts += [{"id": f"overrefusal:{p['id']}", "set": "overrefusal", **{k: p[k] for k in
                     ("prompt", "category", "label")}} for p in found]
    stats["excluded_seen"] = sum(stats[s]["excluded_seen"] for s in PROMPT_SETS if s in stats)
    return prompts, stats, artifacts


def generate(ctx: StageContext, model: str, prompts: List[dict]) -> Dict[str, str]:
    """The model's answer to every prompt (appended per chunk to answers.<model>.jsonl, so a rerun resumes; in
    `shards` shards on the node's executor when it has more than one). One compared model in memory at a time."""
    rows, _ = sharded_chunks(ctx, prompts, f"models.{model}", answer, "prompts", f"answers.{model}.jsonl")
    return {r["id"]: r["answer"] for r in rows}


def answer(chunk: List[dict], ctx: StageContext, engine) -> List[dict]:
    """A compared model's answers to a chunk of prompts."""
    seeds = example_seeds(ctx.seed, [p["id"] for p in chunk], "answer")  # the same draws for every model
    texts = engine.generate([[{"role": "user", "content": p["prompt"]}] for p in chunk], ctx.cfg.sampling, seeds)
    return [{"id": p["id"], "answer": t.strip()} for p, t in zip(chunk, texts)]
