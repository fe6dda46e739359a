"""Weighted mixtures of training sources (node artifacts and source URIs): a seeded held-out split, then weights.

Each source is split into train / held-out rows first, so a repeated (weight > 1) row never leaks into the eval set;
weights then subsample (< 1) or repeat (> 1) the training rows, all seeded by the run seed and the source's slot.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

from omegaconf import MISSING

from cai import sources
from cai.errors import CaiError
from cai.stage_api import Input


@dataclass
class MixturePart:
    source: str = MISSING
    """A node (sl_data) or a source URI (hf://org/name?split=train_sft&field=messages, file://rows.jsonl)."""
    weight: float = 1.0
    """Share of the source's training rows: < 1 subsamples, > 1 repeats (seeded)."""


@dataclass
class Mixture:
    """The mixed training and held-out rows, and per-source counts for metrics.json."""

    train: List[Any]
    eval: List[Any]
    sources: List[Dict[str, Any]] = field(default_factory=list)


def mixture_refs(node_cfg) -> Dict[str, Tuple[str, str]]:
    """The stage `refs` hook: source i becomes input slot `mixture.i`, resolved, type-checked and keyed by the graph."""
    return {f"mixture.{i}": (part.source, f"mixture.{i}.source") for i, part in enumerate(node_cfg.mixture or [])}


def check_mixture(node_cfg, where: str) -> None:
    """At least one source, every weight positive."""
    if not node_cfg.mixture:
        raise CaiError(f"{where}.mixture: empty; give at least one {{source: NODE_OR_URI, weight: 1.0}}")
    for i, part in enumerate(node_cfg.mixture):
        if not part.weight > 0:
            raise CaiError(f"{where}.mixture.{i}.weight: must be > 0, got {part.weight}")


def read_source(inp: Input) -> List[Any]:
    """Raw rows of one source: a node artifact's hf/ dataset, or what a source URI holds."""
    if inp.kind == "node":
        from datasets import load_from_disk

        return list(load_from_disk(str(inp.path / "hf")))
    return sources.read_rows(sources.parse_uri(inp.target))


def weighted(rows: List[Any], weight: float, rng: random.Random) -> List[Any]:
    """`floor(weight)` full copies plus a seeded sample of the fractional part."""
    whole = math.floor(weight)
    extra = round((weight - whole) * len(rows))
    return rows * whole + rng.sample(rows, extra)


def split(rows: List[Any], eval_fraction: float, rng: random.Random) -> Tuple[List[Any], List[Any]]:
    """Seeded (train, held-out) split; at least one training row is kept."""
    order = list(rows)
    rng.shuffle(order)
    n_eval = min(round(eval_fraction * len(order)), max(len(order) - 1, 0))
    return order[n_eval:], order[:n_eval]


def mix(parts: List[Tuple[str, List[Any], float]], seed: int, eval_fraction: float, eval_max: int) -> Mixture:
    """Split each `(name, rows, weight)` part, weight its training rows (its held-out rows by min(weight, 1)), mix."""
    train, held_out, summary = [], [], []
    for name, rows, weight in parts:
        rng = random.Random(f"{seed}/{name}")
        part_train, part_eval = split(rows, eval_fraction, rng)
        part_train = weighted(part_train, weight, rng)
        part_eval = weighted(part_eval, min(weight, 1.0), rng)
        train += part_train
        held_out += part_eval
        summary.append({"source": name, "rows": len(rows), "weight": weight, "train": len(part_train),
                        "eval": len(part_eval)})
    if not train:
        raise CaiError(f"the mixture has no training rows (sources: {', '.join(n for n, _, _ in parts)})")
    rng = random.Random(seed)
    rng.shuffle(train)
    rng.shuffle(held_out)
    return Mixture(train, held_out[:eval_max], summary)
