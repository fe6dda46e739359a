"""Attention over a prompt prefix every row of a batch shares, held once instead of once per row.

Every SL-CAI chat starts with the same system prompt and few-shot exemplars (sec. 3.1; ~300 to ~1,200 tokens per
shipped exemplar). Copied into every row, their keys and values filled memory (32 rows x 596 prefix tokens of SmolLM2:
0.9 GB per copy, and the next turn's cache held another) and each decoding step attended them row by row. Here the
cache keeps one copy, and attention runs in two parts merged by their log-sum-exp (as cascade/shared-prefix attention
kernels do): all rows' queries against the prefix as one batch of queries, then each row's queries against its own
tokens. Both parts run torch's CPU flash kernel, which returns the log-sum-exp: CPU only (not yet measured on GPUs).
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Any, Iterator, List, Optional

import torch
from transformers import AttentionInterface, AttentionMaskInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import sdpa_mask

from cai.engines.growable_cache import GrowableLayer, growable_cache

NAME = "cai_shared_prefix"
_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("cai_shared_prefix_cache", default=None)


class SharedPrefixLayer(GrowableLayer):
    """A growable layer whose sequence starts with `prefix_keys`/`prefix_values` ([kv_heads, P, head_dim]) shared by
    every row; `keys`/`values` hold only what follows, per row."""

    def __init__(self, prefix_keys: Any, prefix_values: Any) -> None:
        super().__init__()
        self.prefix_keys, self.prefix_values = prefix_keys, prefix_values

    def get_seq_length(self) -> int:
        """Prefix and own tokens: what positions and masks count."""
        return self.prefix_keys.shape[-2] + self.own_length()


def shared_prefix_cache(config: Any, prefix: List[tuple], own: Optional[List[tuple]] = None) -> Any:
    """A cache whose layers share `prefix` (per layer, keys and values of one sequence) and start each row with the
    `own` keys and values ([rows, kv_heads, tokens, head_dim] per layer), if any."""
    cache = growable_cache(config)
    cache.layers = [SharedPrefixLayer(keys, values) for keys, values in prefix]
    for index, (keys, values) in enumerate(own or []):
        cache.layers[index].update(keys, values)
    return cache


@contextlib.contextmanager
def attending(cache: Any) -> Iterator[None]:
    """Within the block, attention layers read the shared prefix of `cache`'s layers."""
    token = _ACTIVE.set(cache)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def use_shared_prefix_attention(model: Any) -> bool:
    """Switch an sdpa model on a CPU to the shared-prefix attention (plain sdpa outside `attending`); whether it was."""
    if model.config._attn_implementation != "sdpa" or model.device.type != "cpu":
        return False
    AttentionInterface.register(NAME, shared_prefix_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    model.set_attn_implementation(NAME)
    return True


def shared_prefix_attention(module, query, key, value, attention_mask, dropout: float = 0.0, scaling=None, **kwargs):
    """Attention of `query` over the active cache's shared prefix and then `key`/`value` (the row's own tokens)."""
    cache = _ACTIVE.get()
    layer = cache.layers[module.layer_idx] if cache is not None else None
    if not isinstance(layer, SharedPrefixLayer):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    rows, heads, steps, dim = query.shape
    kv_heads = key.shape[1]
    scale = scaling if scaling is not None else dim ** -0.5
    # query heads h = k * groups + j read key/value head k: grouped, they are extra query positions of head k
    grouped = query.reshape(rows, kv_heads, heads // kv_heads * steps, dim)
    across = grouped.transpose(0, 1).reshape(1, kv_heads, -1, dim)  # every row's queries against the one prefix copy
    prefix_out, prefix_lse = _attend(across, layer.prefix_keys[None], layer.prefix_values[None], None, scale)
    prefix_out = prefix_out.reshape(kv_heads, rows, -1, dim).transpose(0, 1)
    prefix_lse = prefix_lse.reshape(kv_heads, rows, -1).transpose(0, 1)
    own_mask = _own_mask(attention_mask, key.shape[2], steps, heads // kv_heads, query.device)
    own_out, own_lse = _attend(grouped, key, value, own_mask, scale)
    total = torch.logaddexp(prefix_lse, own_lse)
    out = (prefix_out * (prefix_lse - total).exp().unsqueeze(-1) + own_out * (own_lse - total).exp().unsqueeze(-1))
    out = out.to(query.dtype).reshape(rows, heads, steps, dim)
    return out.transpose(1, 2).contiguous(), None


def _own_mask(mask: Any, own: int, steps: int, groups: int, device: Any) -> Any:
    """The mask over the row's own keys ([rows, 1, groups * steps, own], True = attend); the prefix columns are always
    attended, as every row holds the same prefix unpadded. None from the mask builder means causal, no padding."""
    if mask is None:
        causal = torch.ones(steps, own, dtype=torch.bool, device=device).tril(own - steps)
        return causal.repeat(groups, 1)[None, None]
    mask = mask[..., -own:]  # sdpa_mask (registered for this attention) builds boolean masks
    return mask.unsqueeze(2).expand(-1, -1, groups, -1, -1).reshape(mask.shape[0], 1, groups * steps, own)


def _attend(query: Any, key: Any, value: Any, mask: Any, scale: float) -> tuple:
    """Softmax attention and its log-sum-exp per query ([batch, heads, queries, dim] against [batch, heads, keys, dim]),
    by torch's CPU flash kernel (it returns the log-sum-exp; 4-6x faster here than matmuls materializing scores)."""
    # a finite fill, not -inf: a padded query with every own key masked must not turn into NaN
    bias = None if mask is None else torch.zeros(mask.shape, dtype=query.dtype).masked_fill_(
        ~mask, torch.finfo(query.dtype).min)
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(query, key, value, attn_mask=bias,
                                                                           scale=scale)
    return out.float(), lse.float()
