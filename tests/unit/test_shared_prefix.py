"""Attention over a prefix held once per batch equals attention over the prefix copied into every row."""
from __future__ import annotations

import pytest
import torch

from cai.compat import cache_arg
from cai.config import compose_run
from cai.engines import shared_prefix
from cai.engines.growable_cache import growable_cache
from cai.engines.shared_prefix import attending, shared_prefix_cache, use_shared_prefix_attention
from cai.models import load_causal_lm

PREFIX = 20


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    model = load_causal_lm(compose_run(["recipe=tiny"]).models.generator, tmp_path_factory.mktemp("home"))
    assert model.config.num_attention_heads > model.config.num_key_value_heads  # grouped queries are exercised
    assert use_shared_prefix_attention(model)
    return model


def prefix_cache(model, prefix):
    """A cache holding `prefix` once, as the engine builds it."""
    plain = growable_cache(model.config)
    model(input_ids=torch.tensor([prefix]), **cache_arg(plain), use_cache=True)
    return shared_prefix_cache(model.config, [(layer.keys[0], layer.values[0]) for layer in plain.layers])


def test_padded_rows_after_a_shared_prefix_match_a_full_forward(model):
    generator = torch.Generator().manual_seed(0)
    prefix = torch.randint(5, 200, (PREFIX,), generator=generator).tolist()
    owns = [torch.randint(5, 200, (n,), generator=generator).tolist() for n in (7, 3, 5)]
    width = max(map(len, owns))
    ids = torch.tensor([prefix + [0] * (width - len(own)) + own for own in owns])
    mask = torch.tensor([[1] * PREFIX + [0] * (width - len(own)) + [1] * len(own) for own in owns])
    with torch.inference_mode():
        full = model(input_ids=ids, attention_mask=mask).logits  # sdpa, prefix in every row
        cache = prefix_cache(model, prefix)
        with attending(cache):
            held_once = model(input_ids=ids[:, PREFIX:], attention_mask=mask, **cache_arg(cache), use_cache=True).logits
            following = held_once[:, -1:].argmax(-1)
            mask = torch.cat([mask, torch.ones_like(following)], dim=1)
            step = model(input_ids=following, attention_mask=mask, **cache_arg(cache), use_cache=True).logits
        full_step = model(input_ids=torch.cat([ids, following], dim=1), attention_mask=mask).logits
    for row, own in enumerate(owns):
        assert torch.allclose(held_once[row, -len(own):], full[row, -len(own):], atol=1e-5)
    assert torch.allclose(step[:, -1], full_step[:, -1], atol=1e-5)
    assert cache.get_seq_length() == ids.shape[1] + 1


def test_rows_without_padding_take_the_causal_path(model):
    prefix, own = list(range(10, 10 + PREFIX)), list(range(50, 56))
    ids = torch.tensor([prefix + own] * 2)
    with torch.inference_mode():
        full = model(input_ids=ids).logits
        cache = prefix_cache(model, prefix)
        with attending(cache):
            held_once = model(input_ids=ids[:, PREFIX:], **cache_arg(cache), use_cache=True).logits
    assert torch.allclose(held_once, full[:, PREFIX:], atol=1e-5)


def test_outside_attending_the_model_is_plain_sdpa(model):
    ids = torch.tensor([list(range(10, 40))])
    with torch.inference_mode():
        ours = model(input_ids=ids).logits
        model.set_attn_implementation("sdpa")
        try:
            plain = model(input_ids=ids).logits
        finally:
            model.set_attn_implementation(shared_prefix.NAME)
    assert torch.equal(ours, plain)
