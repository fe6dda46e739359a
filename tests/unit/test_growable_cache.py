"""The in-place KV cache layer returns what DynamicLayer's concatenation would, and reallocates once per block."""
from __future__ import annotations

import torch

from cai.engines.growable_cache import BLOCK, GrowableLayer


def steps(layer, chunks):
    for keys, values in chunks:
        out = layer.update(keys, values)
    return out


def test_appends_match_concatenation_and_reuse_the_buffer():
    torch.manual_seed(0)
    chunks = [(torch.randn(3, 2, n, 4), torch.randn(3, 2, n, 4)) for n in (5, 1, 1, 7, 1)]
    keys, values = steps(GrowableLayer(), chunks)
    assert torch.equal(keys, torch.cat([k for k, _ in chunks], dim=-2))
    assert torch.equal(values, torch.cat([v for _, v in chunks], dim=-2))
    layer = GrowableLayer()
    layer.update(*chunks[0])
    storage = layer.keys.untyped_storage().data_ptr()
    for _ in range(BLOCK):  # a whole block of single-token steps fits the headroom: no new buffer
        layer.update(torch.zeros(3, 2, 1, 4), torch.zeros(3, 2, 1, 4))
    assert layer.keys.untyped_storage().data_ptr() == storage and layer.get_seq_length() == 5 + BLOCK


def test_batch_expansion_after_a_prefix_keeps_every_row():
    prefix = (torch.randn(1, 2, 6, 4), torch.randn(1, 2, 6, 4))
    layer = GrowableLayer()
    layer.update(*prefix)
    layer.batch_repeat_interleave(3)  # a shared few-shot prefix expanded across a batch (cai.engines.hf)
    new = (torch.randn(3, 2, 2, 4), torch.randn(3, 2, 2, 4))
    keys, _ = layer.update(*new)
    assert torch.equal(keys, torch.cat([prefix[0].expand(3, -1, -1, -1), new[0]], dim=-2))
