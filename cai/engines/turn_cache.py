"""Keys and values of the last generate call's sequences, so the next turn of a chat continues from them.

SL-CAI asks each chat three times (answer, critique, revision; sec. 3.1): every turn's prompt is the previous turn's
prompt, its reply and a new request. Re-encoding the whole conversation each turn made prefill most of the stage's
work on a CPU; here each row keeps the keys and values of every token it was fed after the batch's shared prefix (held
once, see shared_prefix.py), and a new prompt that starts with one of them (longest common token prefix) only encodes
the rest. Rows of one batch may continue caches of different lengths: they are stacked right-aligned, the padding on
their left masked.
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
    """The sequences one generate call fed its model (prompt and reply), with their keys and values from `start` on
    (the tokens before `start` were the batch's shared prefix, held once; see shared_prefix.py)."""

    def __init__(self) -> None:
        self.sequences: List[Tuple[List[int], int, Layers]] = []

    def match(self, prompt: Sequence[int], floor: int, start: int = 0) -> Optional[Reuse]:
        """The remembered sequence kept from `start` sharing the most leading tokens with `prompt` (more than
        `floor`, and at least one token of the prompt left to encode), or None."""
        best, best_layers = floor, None
        for ids, kept_from, layers in self.sequences:
            limit = min(len(ids), len(prompt) - 1)
            if kept_from != start or limit <= best:
                continue
            same = next((i for i in range(limit) if ids[i] != prompt[i]), limit)
            if same > best:
                best, best_layers = same, layers
        return Reuse(best, best_layers) if best_layers is not None else None

    def remember(self, cache: Any, fed: List[List[int]], mask: Any, start: int = 0) -> None:
        """Add each row's fed token ids and the keys/values the cache holds at its unmasked positions from `start` on
        (`mask`: [rows, positions])."""
        import torch

        for row, ids in enumerate(fed):
            where = torch.nonzero(mask[row, start:], as_tuple=True)[0]
            layers = [(layer.keys[row].index_select(1, where), layer.values[row].index_select(1, where))
                      for layer in cache.layers]
            self.sequences.append((ids, start, layers))

    def clear(self) -> None:
        """Forget every sequence (a new generate call replaces them)."""
        self.sequences = []

    def tokens(self) -> int:
        """Tokens whose keys and values are held."""
        return sum(len(ids) - start for ids, start, _ in self.sequences)


def stacked_cache(config: Any, reuses: List[Reuse], width: int, start: int = 0, prefix: Optional[Layers] = None):
    """A cache holding each row's reused keys/values from `start` on, right-aligned in `width` positions, after the
    `start` tokens of `prefix` that every row shares (held once), if given."""
    from cai.engines.growable_cache import growable_cache
    from cai.engines.shared_prefix import shared_prefix_cache

    rows = [r for r in reuses if r.layers is not None and r.length > start]
    if not rows:
        return shared_prefix_cache(config, prefix) if prefix else growable_cache(config)
    own = []
    for index, (key, _) in enumerate(rows[0].layers):
        keys = key.new_zeros((len(reuses), key.shape[0], width, key.shape[2]))
        values = keys.clone()
        for row, reuse in enumerate(reuses):
            if reuse.layers is not None and reuse.length > start:
                keys[row, :, width - reuse.length + start:] = reuse.layers[index][0][:, :reuse.length - start]
                values[row, :, width - reuse.length + start:] = reuse.layers[index][1][:, :reuse.length - start]
        own.append((keys, values))
    if prefix:
        return shared_prefix_cache(config, prefix, own)
    cache = growable_cache(config)
    for index, (keys, values) in enumerate(own):
        cache.update(keys, values, index)
    return cache
