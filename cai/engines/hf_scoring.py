"""The hf engine's option scoring: log-probs of option strings after prompts, in as few forward passes as they allow.

`choice_logprobs` renders each prompt (raw text as is, a chat continued from its final assistant turn), tokenizes
prompt and options separately (lm-eval-harness style) and scores token ids with `option_logprobs`.

Each prompt is run once. The options' shared leading tokens (e.g. " (" of " (A)" / " (B)") are appended to the
prompt; when every option then has one token left, all options are read from the last position's logits (one pass
per prompt). Longer options continue from the prompt's KV cache, expanded across the options, in one small extra
pass. Prompts sharing a long token prefix (few-shot exemplars, one conversation under several principles or both A/B
orders) share its computation: the prefix runs once, level by level like a trie, and its cache is expanded across
the prompts below it. Batches are filled by a token budget, longest first, left-padded with explicit position ids,
so padding never changes a score.
"""
from __future__ import annotations

import time
from typing import Any, List, Optional, Sequence, Union

from cai.compat import cache_arg, out_cache
from cai.engines.options import Chat, Item, prepare, tokenize_options


def choice_logprobs(engine: Any, prompts: Sequence[Union[str, Chat]],
                    options: Sequence[Sequence[str]]) -> List[List[float]]:
    """Per prompt, each option's log-prob summed over its tokens, for an HFEngine (its tokenizer, model, spec)."""
    start = time.perf_counter()
    tokenizer, spec = engine.tokenizer, engine.spec
    ids, option_ids = tokenize_options(tokenizer, spec.system_prompt, prompts, options)
    scores = option_logprobs(engine.model, ids, option_ids, tokenizer.pad_token_id, spec.max_batch_tokens,
                             spec.max_batch_size)
    engine.stats.prompts += len(prompts)
    engine.stats.prompt_tokens += sum(map(len, ids))
    engine.stats.seconds += time.perf_counter() - start
    return scores


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def length_batches(items: List[Item], max_tokens: int, max_size: int, min_fill: float = 0.8) -> List[List[Item]]:
    """Longest first; a batch's rows times its padded width (its first row's) stay within `max_tokens`, and a row
    shorter than `min_fill` of that width starts a new batch (padding is pure waste on a compute-bound CPU)."""
    batches, current = [], []
    for item in sorted(items, key=lambda it: -len(it.context)):
        width = len((current[0] if current else item).context) + max(len(t) for t in item.tails)
        if current and (width * (len(current) + 1) > max_tokens or len(current) >= max_size
                        or len(item.context) < min_fill * len(current[0].context)):
            batches.append(current)
            current = []
        current.append(item)
    return batches + ([current] if current else [])


def option_logprobs(model: Any, prompts: List[List[int]], options: List[List[List[int]]], pad_id: int,
                    max_tokens: int = 16384, max_size: int = 64, min_shared: int = 32) -> List[List[float]]:
    """Per prompt, each option's log-prob summed over its tokens, given the prompt (token ids in, floats out)."""
    import torch

    items = sorted((prepare(i, p, o) for i, (p, o) in enumerate(zip(prompts, options))), key=lambda it: it.context)
    # shared prefix of each neighbour pair in token order, short of either prompt's last token
    lcps = [min(common_prefix(a.context, b.context), a.prompt_len - 1, b.prompt_len - 1)
            for a, b in zip(items, items[1:])]
    scores: List[Optional[List[float]]] = [None] * len(items)
    with torch.inference_mode():
        min_shared = min_shared if min_shared > 0 else 1 << 30  # <= 0 turns prefix sharing off
        visit(model, items, lcps, 0, None, scores, (pad_id, max_tokens, max_size, min_shared))
    return scores  # type: ignore[return-value]


def visit(model: Any, items: List[Item], lcps: List[int], depth: int, cache: Any, scores: list, opts: tuple) -> None:
    """Score token-sorted `items` that share `depth` tokens (held in `cache`): each run of neighbours sharing at
    least `min_shared` more tokens extends the cache once and recurses (a prefix trie: exemplars once, then each
    conversation once, ...); the rest are batched on this cache."""
    pad_id, max_tokens, max_size, min_shared = opts
    loose, start = [], 0
    for end in range(1, len(items) + 1):
        if end < len(items) and lcps[end - 1] >= depth + min_shared:
            continue  # items[end] still shares enough with items[end - 1]
        if end - start > 1:
            shared = min(lcps[start:end - 1])
            child = run_prefix(model, items[start].context[depth:shared], cache)
            visit(model, items[start:end], lcps[start:end - 1], shared, child, scores, opts)
        else:
            loose.append(items[start])
        start = end
    for batch in length_batches(loose, max_tokens, max_size):
        for item, row in zip(batch, score_batch(model, batch, depth, cache, pad_id)):
            scores[item.index] = row


def run_prefix(model: Any, ids: List[int], parent: Any = None) -> Any:
    """The KV cache of a prefix shared by a group of prompts, computed once (continuing `parent`'s cache)."""
    import torch

    past = expand(model, parent, [0]) if parent is not None else None
    out = model(input_ids=torch.tensor([ids], device=model.device), **cache_arg(past), use_cache=True, logits_to_keep=1)
    return out_cache(out)


def expand(model: Any, cache: Any, rows: List[int]) -> Any:
    """A new cache holding `cache`'s batch rows `rows` (repeats allowed); the original stays untouched."""
    import torch
    from transformers import DynamicCache

    index = torch.tensor(rows, device=model.device)
    layers = [(k.index_select(0, index), v.index_select(0, index)) for k, v, *_ in cache]
    return DynamicCache(layers, config=model.config)


def score_batch(model: Any, batch: List[Item], shared: int, cache: Any, pad_id: int) -> List[List[float]]:
    """One pass over the batch's contexts (after the shared prefix); option tails longer than a token continue from
    its cache in a second pass."""
    import torch

    device = model.device
    suffixes = [it.context[shared:] for it in batch]
    width = max(map(len, suffixes))
    ids = torch.tensor([[pad_id] * (width - len(s)) + s for s in suffixes], device=device)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in suffixes], device=device)
    mask = torch.cat([torch.ones(len(batch), shared, dtype=mask.dtype, device=device), mask], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
    long_tails = any(len(t) > 1 for it in batch for t in it.tails)
    keep = max(it.n_common for it in batch) + 1
    past = expand(model, cache, [0] * len(batch)) if cache is not None else None
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, **cache_arg(past),
                use_cache=long_tails, logits_to_keep=keep)
    logp = out.logits.float().log_softmax(-1)
    scores = []
    for row, item in enumerate(batch):
        n = item.n_common
        base = sum(float(logp[row, keep - 1 - n + j, item.context[-n + j]]) for j in range(n))
        scores.append([base + float(logp[row, keep - 1, tail[0]]) for tail in item.tails])
    if long_tails:
        continue_tails(model, out_cache(out), mask, batch, scores, pad_id)
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
                position_ids=positions, **cache_arg(cache), use_cache=False)
    logp = out.logits.float().log_softmax(-1)
    for k, (r, o) in enumerate(rows):
        tail = batch[r].tails[o]
        scores[r][o] += sum(float(logp[k, j, tail[j + 1]]) for j in range(len(tail) - 1))
