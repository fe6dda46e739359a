"""SL-CAI data (Bai et al. 2022, section 3): answer red-team prompts, then critique and revise under sampled principles."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import OmegaConf

from cai import sources
from cai.constitution import fewshot_chat, sample_principles, selected_ids
from cai.critique.clean import clean_critique, clean_revision, pick_final
from cai.critique.export import export_hf, write_samples
from cai.engines.base import GENERATE
from cai.errors import CaiError
from cai.keys import example_seeds, stable_rng
from cai.registry import stage
from cai.shards import sharded_chunks
from cai.schema import Sampling
from cai.stage_api import ShardedStageConfig, StageContext


@dataclass
class CritiqueRevisionInputs:
    prompts: str = "cai://redteam"
    """Red-team prompts: a node, or a source URI (cai://, file://, hf://)."""
    generator: str = "models.generator"
    """The helpful model that answers, critiques and revises."""


@dataclass
class CritiqueRevisionConfig(ShardedStageConfig):
    kind: str = "critique_revision"
    inputs: CritiqueRevisionInputs = field(default_factory=CritiqueRevisionInputs)
    sampling: Sampling = field(default_factory=Sampling)
    revisions: int = 1
    """Critique -> revision rounds per prompt, each under a freshly sampled principle."""
    fewshot: bool = True
    """Put the constitution's critique-revision exemplars before every prompt."""
    max_exemplars: Optional[int] = None
    """Use only the constitution's first N critique-revision exemplars (each adds its tokens to every chat's prompt;
    null: all)."""
    limit: Optional[int] = None
    """Use only the first N prompts (after shuffling)."""
    shuffle: bool = False
    max_prompt_chars: int = 2000
    """Longer prompts are truncated (and counted)."""
    chunk_size: int = 32
    """Prompts per generation chunk; each finished chunk is appended to disk, so a killed run resumes."""


def constitution_context(cfg, node_cfg) -> Dict[str, Any]:
    """The constitution parts this stage reads: selected principles, and exemplars when few-shot is on."""
    constitution = cfg.constitution
    principles = OmegaConf.to_container(constitution.critique_revision, resolve=True)
    ids = selected_ids(principles, list(constitution.select), "constitution.select")
    exemplars = OmegaConf.to_container(constitution.fewshot.critique_revision, resolve=True)
    if node_cfg.max_exemplars is not None and node_cfg.max_exemplars < 0:
        raise CaiError(f"max_exemplars: must be >= 0 or null, got {node_cfg.max_exemplars}")
    exemplars = dict(list(exemplars.items())[:node_cfg.max_exemplars])
    return {"constitution": constitution.name, "principles": {i: principles[i] for i in ids},
            "exemplars": exemplars if node_cfg.fewshot else {}}


@stage("critique_revision", schema=CritiqueRevisionConfig, version=2, produces="conversations",
       consumes={"prompts": ("data",), "generator": ("model",)}, context=constitution_context,
       needs=lambda node_cfg: {"generator": (GENERATE,)})
def critique_revision(ctx: StageContext) -> Dict[str, Any]:
    """Generate `{id, prompt, initial, rounds, final}` records into data.jsonl, resuming an interrupted run."""
    cfg = ctx.cfg
    prompts, source_stats = sources.load_prompts(cfg.inputs.prompts, cfg.limit, cfg.shuffle, ctx.seed,
                                              cfg.max_prompt_chars)
    records, rates = sharded_chunks(ctx, prompts, "generator", process_chunk)
    export_hf(records, ctx.workdir, ctx.context)
    write_samples(records, ctx.workdir / "samples.md", cfg.num_samples)
    return {**summarize(records), "source": source_stats, **rates}


def process_chunk(chunk: List[dict], ctx: StageContext, engine) -> List[dict]:
    """One chunk's records, with the constitution's few-shot exemplars before every prompt (runs in a shard too)."""
    return run_chunk(chunk, fewshot_chat(ctx.context["exemplars"]), ctx, engine)


def run_chunk(chunk: List[dict], prefix: List[dict], ctx: StageContext, engine) -> List[dict]:
    """Answer, then critique and revise `revisions` times, all prompts of the chunk batched together; each turn
    continues the chunk's session (its previous turn's keys and values where the engine keeps them)."""
    with engine.session() as session:
        return _rounds(chunk, prefix, ctx, session)


def _rounds(chunk: List[dict], prefix: List[dict], ctx: StageContext, engine) -> List[dict]:
    cfg, principles, ids = ctx.cfg, ctx.context["principles"], [p["id"] for p in chunk]
    chats = [prefix + [{"role": "user", "content": p["prompt"]}] for p in chunk]
    answers = engine.generate(chats, cfg.sampling, example_seeds(ctx.seed, ids, "initial"))
    records = [dict(p, initial=a.strip(), rounds=[]) for p, a in zip(chunk, answers)]
    latest = [a.strip() for a in answers]
    for number in range(cfg.revisions):
        picked = [sample_principles(principles, list(principles), 1, stable_rng(ctx.seed, p["id"], number))[0]
                  for p in chunk]
        chats = [chat + [{"role": "assistant", "content": answer}, {"role": "user", "content": principles[pid]["critique"]}]
                 for chat, answer, pid in zip(chats, latest, picked)]
        critiques = [clean_critique(c) for c in engine.generate(chats, cfg.sampling,
                                                                 example_seeds(ctx.seed, ids, f"c{number}"))]
        chats = [chat + [{"role": "assistant", "content": critique}, {"role": "user", "content": principles[pid]["revision"]}]
                 for chat, critique, pid in zip(chats, critiques, picked)]
        revisions = [clean_revision(r) for r in engine.generate(chats, cfg.sampling,
                                                                example_seeds(ctx.seed, ids, f"r{number}"))]
        for record, pid, critique, revision in zip(records, picked, critiques, revisions):
            record["rounds"].append({"principle_id": pid, "critique_request": principles[pid]["critique"],
                                     "critique": critique, "revision_request": principles[pid]["revision"],
                                     "revision": revision})
        latest = [r or old for r, old in zip(revisions, latest)]  # an empty revision keeps the previous answer
    for record in records:
        record["final"], record["flags"] = pick_final(record["initial"], [r["revision"] for r in record["rounds"]])
    return records


def summarize(records: List[dict]) -> Dict[str, Any]:
    """Counts a reader checks first: records, empty or failed revisions, how often revisions changed the answer."""
    n = len(records)
    flagged = sum(1 for r in records if r["flags"])
    changed = sum(1 for r in records if r["final"] != r["initial"])
    return {"records": n, "flagged_records": flagged, "revision_changed_fraction": changed / n if n else 0.0,
            "empty_revisions": sum(1 for r in records for f in r["flags"] if f.startswith("empty_revision")),
            "mean_initial_chars": sum(len(r["initial"]) for r in records) / max(n, 1),
            "mean_final_chars": sum(len(r["final"]) for r in records) / max(n, 1)}
