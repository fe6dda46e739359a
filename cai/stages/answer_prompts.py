"""Helpful data for the SL-CAI mixture (Bai et al. 2022, sec. 3.1: the SL-CAI model is also trained on the helpful
model's own answers to helpfulness prompts, so it keeps its helpfulness): the generator answers prompts, once."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from cai import sources
from cai.engines.base import GENERATE
from cai.keys import example_seeds
from cai.registry import stage
from cai.shards import sharded_chunks
from cai.schema import Sampling
from cai.stage_api import ShardedStageConfig, StageContext


@dataclass
class AnswerPromptsInputs:
    prompts: str = "cai://helpful"
    """Prompts to answer: a node, or a source URI (cai://, file://, hf://)."""
    generator: str = "models.generator"


@dataclass
class AnswerPromptsConfig(ShardedStageConfig):
    kind: str = "answer_prompts"
    inputs: AnswerPromptsInputs = field(default_factory=AnswerPromptsInputs)
    sampling: Sampling = field(default_factory=Sampling)
    limit: Optional[int] = None
    """Use only the first N prompts (after shuffling)."""
    shuffle: bool = False
    max_prompt_chars: int = 2000
    chunk_size: int = 32
    """Prompts per generation chunk; each finished chunk is appended to disk, so a killed run resumes."""


@stage("answer_prompts", schema=AnswerPromptsConfig, version=2, produces="conversations",
       consumes={"prompts": ("data",), "generator": ("model",)}, needs=lambda node_cfg: {"generator": (GENERATE,)})
def answer_prompts(ctx: StageContext) -> Dict[str, Any]:
    """`{id, prompt, answer}` records into data.jsonl (resuming), and hf/ with a `messages` column."""
    cfg = ctx.cfg
    prompts, source_stats = sources.load_prompts(cfg.inputs.prompts, cfg.limit, cfg.shuffle, ctx.seed,
                                              cfg.max_prompt_chars)
    records, rates = sharded_chunks(ctx, prompts, "generator", answer)
    export(records, ctx)
    empty = sum(1 for r in records if not r["answer"])
    return {"records": len(records), "empty_answers": empty,
            "mean_answer_chars": sum(len(r["answer"]) for r in records) / max(len(records), 1),
            "source": source_stats, **rates}


def answer(chunk: List[dict], ctx: StageContext, engine) -> List[dict]:
    """The generator's answer to each prompt of the chunk, seeded per prompt."""
    chats = [[{"role": "user", "content": p["prompt"]}] for p in chunk]
    answers = engine.generate(chats, ctx.cfg.sampling, example_seeds(ctx.seed, [p["id"] for p in chunk], "answer"))
    return [dict(p, answer=a.strip()) for p, a in zip(chunk, answers)]


def export(records: List[dict], ctx: StageContext) -> None:
    """hf/ (prompt, messages, id, category; empty answers dropped) and samples.md."""
    from datasets import Dataset

    rows = [{"id": r["id"], "category": r.get("category", ""), "prompt": r["prompt"],
             "messages": [{"role": "user", "content": r["prompt"]}, {"role": "assistant", "content": r["answer"]}]}
            for r in records if r["answer"]]
    Dataset.from_list(rows).save_to_disk(str(ctx.workdir / "hf"))
    lines = [f"# {ctx.node}: answers ({min(ctx.cfg.num_samples, len(records))} of {len(records)})", ""]
    for r in records[:ctx.cfg.num_samples]:
        lines += [f"## {r['id']}", "", f"**Prompt:** {r['prompt']}", "", f"**Answer:** {r['answer']}", ""]
    (ctx.workdir / "samples.md").write_text("\n".join(lines), encoding="utf-8")
