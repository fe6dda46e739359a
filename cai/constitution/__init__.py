"""Constitutions: seeded principle sampling and few-shot chats (Bai et al. 2022, sections 3.1 and 4.1)."""
from __future__ import annotations

import random
from typing import Any, Dict, List, Mapping, Sequence

from cai.errors import CaiError

Chat = List[Dict[str, str]]
# The map each select key picks from: with nothing selected, an empty map (not the selection) is what to fix.
_SELECTS_FROM = {"constitution.select": "constitution.critique_revision",
                 "constitution.comparison_select": "constitution.comparison"}


def selected_ids(principles: Mapping[str, Any], select: Sequence[str], where: str) -> List[str]:
    """The principle ids to sample from: `select` when given (every id must exist), else all, in sorted order."""
    ids = list(select) if select else sorted(principles)
    missing = [i for i in ids if i not in principles]
    if missing:
        raise CaiError(f"{where}: selects unknown principle(s) {missing}; available: {sorted(principles)}")
    if not ids:
        raise CaiError(f"{_SELECTS_FROM.get(where, where)} is empty: the constitution has no principles to sample from")
    return ids


def sample_principles(principles: Mapping[str, Any], ids: Sequence[str], k: int, rng: random.Random) -> List[str]:
    """Draw `k` principle ids with replacement, weighted by each principle's `weight` (paper: uniform)."""
    weights = [float(principles[i].get("weight", 1.0)) for i in ids]
    return rng.choices(list(ids), weights=weights, k=k)


def fewshot_chat(exemplars: Mapping[str, Any]) -> Chat:
    """All critique-revision exemplar conversations as one flat chat, put before every prompt."""
    chat: Chat = []
    for exemplar in exemplars.values():  # defaults-list order, as the constitution selects them
        chat += [{"role": m["role"], "content": m["content"]} for m in exemplar["messages"]]
    return chat


def pick_principles(principles: Dict[str, Any], k: int, rng) -> List[str]:
    """k principle ids by weight, without replacement while distinct ones remain (an ensemble of distinct views)."""
    ids = list(principles)
    weight = {i: max(float(principles[i].get("weight", 1.0)), 1e-9) for i in ids}
    keys = {i: rng.random() ** (1.0 / weight[i]) for i in ids}  # Efraimidis-Spirakis weighted sampling
    ranked = sorted(ids, key=lambda i: -keys[i])
    return [ranked[n % len(ranked)] for n in range(k)]
