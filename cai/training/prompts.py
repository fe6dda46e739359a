"""Prompts for RL: a weighted mixture of prompt sources (shipped sets, file://, hf://) and of the prompts inside
upstream artifacts (pairs, preferences, conversations), as conversational prompts ending in a user turn."""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

from cai import sources
from cai.errors import CaiError
from cai.stage_api import Input, StageContext
from cai.chunks import read_jsonl
from cai.training import examples, mixture

Messages = List[Dict[str, str]]


def up_to_last_user(chat: Optional[Messages]) -> Optional[Messages]:
    """The conversation up to and including its last user turn (what the policy answers), or None."""
    users = [i for i, m in enumerate(chat or []) if m["role"] == "user"]
    return chat[:users[-1] + 1] if users else None


def prompt_of(row: Any) -> Optional[Messages]:
    """A row's conversational prompt: its `prompt` (messages or text), else `messages` or `chosen` cut after the
    last user turn (the implicit-prompt layout of SL-CAI conversations and preference datasets)."""
    if not isinstance(row, dict):
        return None
    prompt = row.get("prompt")
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}] if prompt.strip() else None
    for key in ("prompt", "messages", "chosen"):
        found = up_to_last_user(examples.messages(row.get(key)))
        if found:
            return found
    return None


def source_prompts(inp: Input) -> List[Messages]:
    """The distinct prompts of one source: records of an upstream artifact, or a prompt source URI."""
    if inp.kind != "node":
        rows, _ = sources.load_prompts(inp.target)
        found = [[{"role": "user", "content": r["prompt"]}] for r in rows]
    else:  # data.jsonl holds every artifact's records (pairs have no hf/ export)
        rows = read_jsonl(inp.path / "data.jsonl") or mixture.read_source(inp)
        found = [p for p in map(prompt_of, rows) if p]
    seen, unique = set(), []
    for prompt in found:  # all-vs-all pairs and ensembles repeat a prompt: train on each once per source
        text = json.dumps(prompt, sort_keys=True)
        if text not in seen:
            seen.add(text)
            unique.append(prompt)
    return unique


def load(ctx: StageContext, system_prompt: Optional[str]) -> Tuple[mixture.Mixture, Dict[str, int]]:
    """The weighted, seeded mixture of every source's prompts (held-out share split first), the policy's system
    prompt prepended as the engine does; and how many distinct prompts each source gave."""
    parts, counts = [], {}
    for i, part in enumerate(ctx.cfg.mixture):
        prompts = [examples.with_system(p, system_prompt) for p in source_prompts(ctx.inputs[f"mixture.{i}"])]
        if not prompts:
            raise CaiError(f"pipeline.{ctx.node}.mixture.{i}: no prompts ending in a user turn in {part.source!r}")
        counts[part.source] = len(prompts)
        parts.append((part.source, prompts, part.weight))
    return mixture.mix(parts, ctx.seed, ctx.cfg.eval_fraction, ctx.cfg.eval_max), counts
