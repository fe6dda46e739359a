"""The shard plan a run (and a dry run) prints: per sharded node, how many shards, examples each, and where they
run with what resources. It reads no model and contacts no cluster; examples are counted only where that is cheap
(a `limit`, or a local source), else the plan says they are counted when the input loads."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from omegaconf import DictConfig

from cai import executors, sources
from cai.shards import executor_name

EVALUATE_SETS = ("redteam", "helpful")


def expected_items(node: Any) -> Optional[int]:
    """How many examples the node works through, when known before anything loads."""
    cfg = node.cfg
    if node.stage.name == "evaluate":  # `limit` prompts per set, each answered by every model (one file per model)
        return cfg.limit * sum(1 for s in EVALUATE_SETS if cfg.prompts[s])
    if cfg.get("limit"):
        return int(cfg.limit)
    uri = cfg.get("inputs", {}).get("prompts") if node.stage.name in ("critique_revision", "answer_prompts") else None
    if uri and sources.is_uri(str(uri)) and sources.parse_uri(str(uri)).scheme in ("cai", "file"):
        return len(sources.load_prompts(str(uri), None, False, 0, cfg.max_prompt_chars)[0])
    return None


def shard_plan(plan: List[Any], cfg: DictConfig) -> List[Dict[str, Any]]:
    """One row per node with more than one shard: shards, examples per shard, executor, resources."""
    rows = []
    for node in plan:
        shards = int(node.cfg.get("shards") or 1)
        if shards <= 1:
            continue
        name = executor_name(node.cfg, cfg.get("executors"))
        executors.check_executor(name, f"pipeline.{node.name}.executor")
        total = expected_items(node)
        each = f"{total // shards}-{-(-total // shards)}" if total is not None and total % shards else (
            str(total // shards) if total is not None else "1/{} of the input's rows".format(shards))
        rows.append({"node": node.name, "shards": shards, "examples": total, "per_shard": each, "executor": name,
                     "resources": executors.resources(name, cfg.get("executors"), shards)})
    return rows
