"""Keys and values of the last generate call's sequences, so the next turn of a chat continues from them.

SL-CAI asks each chat three times (answer, critique, revision; sec. 3.1): every turn's prompt is the previous turn's
prompt, its reply and a new request. Re-encoding the whole conversation each turn made prefill most of the stage's
work on a CPU; here each row keeps the keys and values of every token it was fed, and a new prompt that starts with
one of them (longest common token prefix) only encodes the rest. Rows of one batch may continue caches of different
lengths: they are stacked right-aligned, the padding on their left masked.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

Layers = List[Tuple[Any, Any]]
"""Per layer, (keys, values) of one sequence: [kv_heads, tokens, head_dim]."""


@dataclass
class Reuse:
    """How much of a prompt a row takes from a cache, and from which one."""

    length: int
    layers: Optional[Layers]


class TurnMemory:
    """The sequences one generate call fed its model (prompt and reply), with their keys and values."""

    def __init__(self) -> None:
        self.sequences: List[Tuple[List[int], Layers]] = []

    def match(self, prompt: Sequence[int], floor: int) -> Optional[Reuse]:
        """The remembered sequence sharing the most leading tokens with `prompt` (more than `floor`, and at least
        one token of the prompt left to encode), or None."""
        best, best_layers = floor, None
        for ids, layers in self.sequences:
            limit = min(len(ids), len(prompt) - 1)
            if limit <= best:
                continue
            same = next((i for i in range(limit) if ids[i] != prompt[i]), limit)
            if same > best:
                best, best_layers = same, layers
        return Reuse(best, best_layers) if best_layers is not None else None

    def remember(self, cache: Any, fed: List[List[int]], mask: Any) -> None:
        """Add each row's fed token ids and the keys/values at its unmasked positions (`mask`: [rows, positions])."""
        import torch

        for row, ids in enumerate(fed):
            where = torch.nonzero(mask[row], as_tuple=True)[0]
            layers = [(layer.keys[row].index_select(1, where), layer.values[row].index_select(1, where))
                      for layer in cache.layers]
            self.sequences.append((ids, layers))

    def clear(self) -> None:
        """Forget every sequence (a new generate call replaces them)."""
        self.sequences = []


def stacked_cache(config: Any, reuses: List[Reuse], width: int) -> Any:
    """A growable cache `width` positions wide holding each row's reused keys/values, right-aligned."""
    from cai.engines.growable_cache import growable_cache

    cache = growable_cache(config)
    sample = next(r.layers for r in reuses if r.layers is not None)
    for index, (key, _) in enumerate(sample):
        keys = key.new_zeros((len(reuses), key.shape[0], width, key.shape[2]))
        values = keys.clone()
        for row, reuse in enumerate(reuses):
            if reuse.length:
                keys[row, :, width - reuse.length:] = reuse.layers[index][0][:, :reuse.length]
                values[row, :, width - reuse.length:] = reuse.layers[index][1][:, :reuse.length]
        cache.update(keys, values, index)
    return cache
