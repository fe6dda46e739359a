"""Option log-probs from a causal LM in as few forward passes as the options allow.

Each prompt is run once. The options' shared leading tokens (e.g. " (" of " (A)" / " (B)") are appended to the
prompt; when every option then has one token left, all options are read from the last position's logits (one pass
per prompt). Longer options continue from the prompt's KV cache, expanded across the options, in one small extra
pass. Prompts sharing a long token prefix (few-shot exemplars, one conversation under several principles or both A/B
orders) share its computation: the shared runs form a trie whose nodes are computed once, a level at a time, and
every pass batches rows from many nodes, each continuing its own node's keys and values (stacked right-aligned in
one cache). Few large passes rather than one small pass per group: on a CPU a small matmul wastes most of its time.
Batches are filled by a token budget, longest first, left-padded with explicit position ids, so padding never
changes a score.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple


@dataclass
class Item:
    """One prompt to score: its context (prompt + the options' common leading tokens) and each option's own tail."""

    index: int
    context: List[int]
    n_common: int
    tails: List[List[int]]

    @property
    def prompt_len(self) -> int:
        """Tokens before the options' common leading tokens."""
        return len(self.context) - self.n_common


def prepare(index: int, prompt: List[int], options: Sequence[List[int]]) -> Item:
    """Move the options' common leading tokens into the context, leaving every option at least one token."""
    if not prompt:
        raise ValueError(f"prompt {index} is empty: nothing predicts the first option token")
    if not options or any(not o for o in options):
        raise ValueError(f"prompt {index}: every option needs at least one token")
    common = 0
    shortest = min(len(o) for o in options)
    while common < shortest - 1 and all(o[common] == options[0][common] for o in options):
        common += 1
    return Item(index, prompt + list(options[0][:common]), common, [list(o[common:]) for o in options])


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def option_logprobs(model: Any, prompts: List[List[int]], options: List[List[List[int]]], pad_id: int,
                    max_tokens: int = 16384, max_size: int = 64, min_shared: int = 32) -> List[List[float]]:
    """Per prompt, each option's log-prob summed over its tokens, given the prompt (token ids in, floats out)."""
    import torch

    items = sorted((prepare(i, p, o) for i, (p, o) in enumerate(zip(prompts, options))), key=lambda it: it.context)
    # shared prefix of each neighbour pair in token order, short of either prompt's last token
    lcps = [min(common_prefix(a.context, b.context), a.prompt_len - 1, b.prompt_len - 1)
            for a, b in zip(items, items[1:])]
    min_shared = min_shared if min_shared > 0 else 1 << 30  # <= 0 turns prefix sharing off
    leaves = build_trie(items, lcps, 0, None, min_shared)
    scores: List[Optional[List[float]]] = [None] * len(items)
    limits = (max_tokens, max_size)
    with torch.inference_mode():
        for level in trie_levels([node for _, node in leaves]):
            rows = [Row(node.tokens, node.parent, node) for node in level]
            for batch in row_batches(rows, *limits):
                run_nodes(model, batch, pad_id)
        rows = [Row(item.context[node.end if node else 0:], node, item) for item, node in leaves]
        for batch in row_batches(rows, *limits):
            for row, got in zip(batch, score_batch(model, batch, pad_id)):
                scores[row.owner.index] = got
    return scores  # type: ignore[return-value]


@dataclass
class Node:
    """A run of tokens every prompt below it in the prefix trie shares: its keys and values are computed once."""

    parent: Optional["Node"]
    tokens: List[int]
    end: int
    """Tokens from the root to this node's last token (the position the tokens below it start at)."""
    kv: Optional[List[Tuple[Any, Any]]] = None
    """Per layer, the keys and values of this node's own tokens, [kv_heads, len(tokens), head_dim]."""


@dataclass
class Row:
    """One sequence of a forward pass: new tokens continuing a trie node's cache (or nothing)."""

    tokens: List[int]
    parent: Optional[Node]
    owner: Any
    """The Node these tokens make (its kv is filled in) or the Item they score."""

    @property
    def start(self) -> int:
        return self.parent.end if self.parent else 0


def build_trie(items: List[Item], lcps: List[int], depth: int, parent: Optional[Node],
               min_shared: int) -> List[Tuple[Item, Optional[Node]]]:
    """Each token-sorted item with the deepest trie node above it. A run of neighbours sharing at least
    `min_shared` more tokens than `depth` gets a node for those tokens (exemplars, then a conversation, ...)."""
    out, start = [], 0
    for end in range(1, len(items) + 1):
        if end < len(items) and lcps[end - 1] >= depth + min_shared:
            continue  # items[end] still shares enough with items[end - 1]
        if end - start > 1:
            shared = min(lcps[start:end - 1])
            node = Node(parent, items[start].context[depth:shared], shared)
            out += build_trie(items[start:end], lcps[start:end - 1], shared, node, min_shared)
        else:
            out.append((items[start], parent))
        start = end
    return out


def trie_levels(parents: List[Optional[Node]]) -> List[List[Node]]:
    """The trie's nodes above `parents`, root level first (a level's nodes run together in batched passes)."""
    levels: Dict[int, Dict[int, Node]] = {}
    for node in parents:
        chain = []
        while node is not None:
            chain.append(node)
            node = node.parent
        for depth, ancestor in enumerate(reversed(chain)):
            levels.setdefault(depth, {})[id(ancestor)] = ancestor
    return [list(levels[d].values()) for d in sorted(levels)]


def row_batches(rows: List[Row], max_tokens: int, max_size: int, min_fill: float = 0.8) -> List[List[Row]]:
    """Longest new part first; a batch's rows times its width (cache + new tokens) stay within `max_tokens`, and a
    row shorter than `min_fill` of the batch's longest starts a new batch (padding is waste on a compute-bound CPU)."""
    batches: List[List[Row]] = []
    current: List[Row] = []
    for row in sorted(rows, key=lambda r: (-len(r.tokens), -r.start)):
        width = max([r.start for r in current] + [row.start]) + len((current[0] if current else row).tokens)
        if current and (width * (len(current) + 1) > max_tokens or len(current) >= max_size
                        or len(row.tokens) < min_fill * len(current[0].tokens)):
            batches.append(current)
            current = []
        current.append(row)
    return batches + ([current] if current else [])


def forward_rows(model: Any, batch: List[Row], pad_id: int, keep: int, use_cache: bool) -> Tuple[Any, Any]:
    """One pass over the rows' new tokens, each continuing its own trie node: the nodes' keys and values are
    stacked right-aligned into one cache, and left padding on both sides is masked, positions given explicitly."""
    import torch

    device = model.device
    cached, width = max(r.start for r in batch), max(len(r.tokens) for r in batch)
    ids = torch.tensor([[pad_id] * (width - len(r.tokens)) + r.tokens for r in batch], device=device)
    mask = torch.tensor([[0] * (cached - r.start) + [1] * r.start + [0] * (width - len(r.tokens))
                         + [1] * len(r.tokens) for r in batch], device=device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, cached:]
    past = stacked_cache(model, batch, cached) if cached else None
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=past, use_cache=use_cache,
                logits_to_keep=keep)
    return out, mask


def stacked_cache(model: Any, batch: List[Row], cached: int) -> Any:
    """A cache `cached` positions wide holding each row's trie path (root to parent), right-aligned."""
    import torch
    from transformers import DynamicCache

    layers = []
    for layer, (sample, _) in enumerate(next(r.parent for r in batch if r.parent).kv):
        keys = sample.new_zeros((len(batch), sample.shape[0], cached, sample.shape[2]))
        values = torch.zeros_like(keys)
        for i, row in enumerate(batch):
            node = row.parent
            while node is not None:
                at = cached - row.start + node.end - len(node.tokens)
                keys[i, :, at:at + len(node.tokens)] = node.kv[layer][0]
                values[i, :, at:at + len(node.tokens)] = node.kv[layer][1]
                node = node.parent
        layers.append((keys, values))
    return DynamicCache(layers, config=model.config)


def run_nodes(model: Any, batch: List[Row], pad_id: int) -> None:
    """Compute a batch of trie nodes and keep each one's own keys and values."""
    out, _ = forward_rows(model, batch, pad_id, keep=1, use_cache=True)
    for i, row in enumerate(batch):
        n = len(row.tokens)
        row.owner.kv = [(k[i, :, -n:].clone(), v[i, :, -n:].clone()) for k, v, *_ in out.cache]


def score_batch(model: Any, batch: List[Row], pad_id: int) -> List[List[float]]:
    """One pass over the batch's contexts (after their trie nodes); option tails longer than a token continue from
    its cache in a second pass."""
    items = [row.owner for row in batch]
    long_tails = any(len(t) > 1 for it in items for t in it.tails)
    keep = max(it.n_common for it in items) + 1
    out, mask = forward_rows(model, batch, pad_id, keep, use_cache=long_tails)
    logp = out.logits.float().log_softmax(-1)
    scores = []
    for row, item in enumerate(items):
        n = item.n_common
        base = sum(float(logp[row, keep - 1 - n + j, item.context[-n + j]]) for j in range(n))
        scores.append([base + float(logp[row, keep - 1, tail[0]]) for tail in item.tails])
    if long_tails:
        continue_tails(model, out.cache, mask, items, scores, pad_id)
    return scores


def continue_tails(model: Any, cache: Any, mask: Any, batch: List[Item], scores: List[List[float]],
                   pad_id: int) -> None:
    """Add the log-probs of option tokens after the first: every (prompt, option) row continues from the prompt's
    cache (expanded per option), right-padded, in one pass."""
    import torch

    rows = [(r, o) for r, it in enumerate(batch) for o, tail in enumerate(it.tails) if len(tail) > 1]
    index = torch.tensor([r for r, _ in rows], device=mask.device)
    cache.reorder_cache(index)  # index_select with repeats: one cache row per (prompt, option)
    inputs = [batch[r].tails[o][:-1] for r, o in rows]  # token j predicts token j + 1
    width = max(map(len, inputs))
    ids = torch.tensor([t + [pad_id] * (width - len(t)) for t in inputs], device=mask.device)
    new = torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in inputs], device=mask.device)
    start = mask.sum(-1).index_select(0, index)
    positions = start[:, None] + torch.arange(width, device=mask.device)[None, :]
    out = model(input_ids=ids, attention_mask=torch.cat([mask.index_select(0, index), new], dim=1),
                position_ids=positions, cache=cache, use_cache=False)
    logp = out.logits.float().log_softmax(-1)
    for k, (r, o) in enumerate(rows):
        tail = batch[r].tails[o]
        scores[r][o] += sum(float(logp[k, j, tail[j + 1]]) for j in range(len(tail) - 1))
