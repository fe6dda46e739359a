"""RL-CAI response pairs (Bai et al. 2022, section 4.1): the policy answers a weighted red-team + helpful prompt mix
`k` times per prompt, one temperature per response, for the feedback model to compare.

Records `{id, prompt (messages), responses, temperatures, category, source}` go to data.jsonl, appended per chunk
so a killed run resumes. Pairs are formed by the consumer (label_preferences `pairing: all | adjacent`), so one
sampling run serves every pairing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from omegaconf import MISSING, OmegaConf

from cai import sources
from cai.engines.base import GENERATE
from cai.keys import example_seeds
from cai.errors import CaiError
from cai.registry import stage
from cai.schema import Sampling
from cai.stage_api import ShardedStageConfig, StageContext
from cai.shards import sharded_chunks


@dataclass
class PromptSource:
    source: str = MISSING
    """A prompt source URI (cai://redteam, file://prompts.jsonl, hf://org/name?split=train&field=prompt)."""
    weight: float = 1.0
    """Relative share of the prompts drawn from this source."""


@dataclass
class SamplePairsInputs:
    policy: str = "models.generator"
    """The policy that answers: a model role, or an upstream node producing a model (e.g. sft)."""


@dataclass
class SamplePairsConfig(ShardedStageConfig):
    kind: str = "sample_pairs"
    inputs: SamplePairsInputs = field(default_factory=SamplePairsInputs)
    prompts: List[PromptSource] = field(default_factory=lambda: [PromptSource("cai://redteam"),
                                                                 PromptSource("cai://helpful")])
    """The prompt mix; each source becomes input slot `prompts.<i>` (keyed and checked like any input)."""
    k: int = 2
    """Responses per prompt (>= 2)."""
    temperatures: Optional[List[float]] = None
    """One sampling temperature per response (length k; 0 is greedy); null samples all with `sampling`."""
    sampling: Sampling = field(default_factory=Sampling)
    limit: Optional[int] = None
    """Total prompts, split across sources by weight; null takes as many as the weights allow."""
    max_prompt_chars: int = 2000
    chunk_size: int = 32
    """Prompts per generation chunk; each finished chunk is appended to disk, so a killed run resumes."""


def prompt_refs(node_cfg) -> Dict[str, Tuple[str, str]]:
    """The `refs` hook: prompt source i is input slot `prompts.i` for the graph (resolved, type-checked, keyed)."""
    return {f"prompts.{i}": (part.source, f"prompts.{i}.source") for i, part in enumerate(node_cfg.prompts or [])}


def check(node_cfg, where: str) -> None:
    """Plan-time: k >= 2, responses that can differ, a non-empty mix with positive weights."""
    if node_cfg.k < 2:
        raise CaiError(f"{where}.k: need at least 2 responses per prompt to compare, got {node_cfg.k}")
    if node_cfg.temperatures is not None and len(node_cfg.temperatures) != node_cfg.k:
        raise CaiError(f"{where}.temperatures: give one per response (k={node_cfg.k}), got "
                       f"{len(node_cfg.temperatures)}")
    if node_cfg.temperatures is None and not node_cfg.sampling.do_sample:
        raise CaiError(f"{where}.sampling.do_sample: greedy decoding gives {node_cfg.k} identical responses; "
                       f"sample, or set {where}.temperatures (one per response)")
    if not node_cfg.prompts:
        raise CaiError(f"{where}.prompts: empty; give at least one {{source: URI, weight: 1.0}}")
    for i, part in enumerate(node_cfg.prompts):
        if not part.weight > 0:
            raise CaiError(f"{where}.prompts.{i}.weight: must be > 0, got {part.weight}")


@stage("sample_pairs", schema=SamplePairsConfig, version=2, produces="pairs",
       consumes={"policy": ("model",), "prompts": ("data",)}, refs=prompt_refs, check=check,
       needs=lambda node_cfg: {"policy": (GENERATE,)})
def sample_pairs(ctx: StageContext) -> Dict[str, Any]:
    """`k` responses per prompt of the mix into data.jsonl, resuming an interrupted run."""
    prompts, used = select_prompts(ctx)
    records, rates = sharded_chunks(ctx, prompts, "policy", answer)
    write_samples(records, ctx)
    return {**summarize(records), "sources": used, **rates}


def select_prompts(ctx: StageContext) -> Tuple[List[dict], List[dict]]:
    """Each source's prompts (seeded shuffle), drawn in proportion to the weights."""
    parts = [(i, part, *sources.load_prompts(part.source, None, True, ctx.seed, ctx.cfg.max_prompt_chars))
             for i, part in enumerate(ctx.cfg.prompts)]
    total_weight = sum(part.weight for _, part, _, _ in parts)
    # without a limit, the largest total the sources can supply at these shares
    total = ctx.cfg.limit or min(int(len(rows) * total_weight / part.weight) for _, part, rows, _ in parts)
    prompts, used = [], []
    for i, part, rows, stats in parts:
        take = min(len(rows), round(total * part.weight / total_weight))
        prompts += [{"id": f"s{i}-{p['id']}", "prompt": p["prompt"], "category": p["category"],
                     "source": part.source} for p in rows[:take]]
        used.append({**stats, "source": part.source, "weight": part.weight, "used": take})
    if not prompts:
        raise CaiError(f"pipeline.{ctx.node}: the prompt mix selects no prompts (limit {ctx.cfg.limit})")
    return prompts, used


def answer(chunk: List[dict], ctx: StageContext, engine) -> List[dict]:
    """One generation call per response slot, each with its own temperature and seed."""
    cfg = ctx.cfg
    chats = [[{"role": "user", "content": p["prompt"]}] for p in chunk]
    temperatures = list(cfg.temperatures) if cfg.temperatures is not None else [cfg.sampling.temperature] * cfg.k
    columns = []
    for slot, temperature in enumerate(temperatures):
        sampling = cfg.sampling
        if cfg.temperatures is not None:
            sampling = OmegaConf.merge(cfg.sampling, {"temperature": float(temperature) or 1.0,
                                                      "do_sample": temperature > 0})
        seeds = example_seeds(ctx.seed, [p["id"] for p in chunk], f"response{slot}")
        columns.append([r.strip() for r in engine.generate(chats, sampling, seeds)])
    return [{"id": p["id"], "prompt": chat, "responses": [column[n] for column in columns],
             "temperatures": temperatures, "category": p["category"], "source": p["source"]}
            for n, (p, chat) in enumerate(zip(chunk, chats))]


def summarize(records: List[dict]) -> Dict[str, Any]:
    """Counts a reader checks first: records, empty responses, prompts whose responses are all identical."""
    responses = [r for rec in records for r in rec["responses"]]
    return {"records": len(records), "responses": len(responses),
            "empty_responses": sum(1 for r in responses if not r),
            "all_identical_records": sum(1 for rec in records if len(set(rec["responses"])) == 1),
            "mean_response_chars": sum(map(len, responses)) / max(len(responses), 1)}


def write_samples(records: List[dict], ctx: StageContext) -> None:
    """samples.md: each prompt with its k responses."""
    lines = [f"# {ctx.node}: response samples ({min(ctx.cfg.num_samples, len(records))} of {len(records)})", ""]
    for record in records[:ctx.cfg.num_samples]:
        lines += [f"## {record['id']} ({record['source']})", "", f"**Prompt:** {record['prompt'][-1]['content']}", ""]
        for slot, (text, temp) in enumerate(zip(record["responses"], record["temperatures"])):
            lines += [f"**Response {slot} (T={temp}):** {text}", ""]
    (ctx.workdir / "samples.md").write_text("\n".join(lines), encoding="utf-8")
