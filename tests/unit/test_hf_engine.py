"""The hf engine on the tiny model: shared-prefix and turn KV reuse change nothing but speed; rows sample from their
own seeds, whatever batch they are in."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from cai.compat import out_cache
from cai.config import compose_run
from cai.engines.hf import HFEngine, shared_prefix_length

GREEDY = OmegaConf.create({"temperature": 1.0, "top_p": 1.0, "top_k": 0, "do_sample": False,
                           "max_new_tokens": 8, "repetition_penalty": 1.5})


def test_shared_prefix_length_leaves_every_prompt_a_token():
    assert shared_prefix_length([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 3, 4, 6]], minimum=1) == 3
    assert shared_prefix_length([[1, 2], [1, 2, 3]], minimum=1) == 1
    assert shared_prefix_length([[1, 2, 3], [1, 2, 4]], minimum=3) == 0
    assert shared_prefix_length([[1, 2, 3]], minimum=1) == 0


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    cfg = compose_run(["recipe=tiny"])
    return HFEngine(cfg.models.generator, tmp_path_factory.mktemp("home"))


def test_prefix_cache_gives_the_same_replies(engine):
    exemplar = [{"role": "user", "content": "An exemplar question about safety " * 6},
                {"role": "assistant", "content": "An exemplar answer. " * 6}]
    chats = [exemplar + [{"role": "user", "content": f"question {i}" + "!" * i}] for i in range(5)]
    engine.min_shared_prefix = 10**9
    plain = engine.generate(chats, GREEDY, [0] * 5)
    engine.min_shared_prefix = 16
    reused_before = engine.stats.prefix_tokens_reused
    cached = engine.generate(chats, GREEDY, [0] * 5)
    assert engine.stats.prefix_tokens_reused > reused_before
    assert cached == plain


def test_sampling_is_deterministic_for_a_seed(engine):
    sampled = OmegaConf.merge(GREEDY, {"do_sample": True, "temperature": 5.0})  # flat enough that seeds matter
    chats = [[{"role": "user", "content": f"q{i}"}] for i in range(3)]
    first = engine.generate(chats, sampled, [3, 4, 5])
    assert engine.generate(chats, sampled, [3, 4, 5]) == first
    assert engine.generate(chats, sampled, [6, 7, 8]) != first


def test_a_rows_sample_depends_on_its_seed_not_on_its_batch(engine):
    sampled = OmegaConf.merge(GREEDY, {"do_sample": True, "temperature": 2.0, "top_p": 0.95, "max_new_tokens": 12})
    chats = [[{"role": "user", "content": f"question number {i} " * (1 + i % 3)}] for i in range(6)]
    seeds = [101, 202, 303, 404, 505, 606]
    together = engine.generate(chats, sampled, seeds)
    budget = engine.spec.max_batch_size
    try:
        engine.spec.max_batch_size = 2  # other batches, other padding
        assert engine.generate(chats, sampled, seeds) == together
    finally:
        engine.spec.max_batch_size = budget
    alone = [engine.generate([chat], sampled, [seed])[0] for chat, seed in zip(chats, seeds)]
    assert alone == together
    assert engine.generate(chats[::-1], sampled, seeds[::-1]) == together[::-1]


def three_turns(engine, chats):
    """Answer, then two follow-up requests on the same chats (the SL-CAI critique/revision shape), in one session;
    returns the replies and the session's last remembered turns."""
    replies = []
    with engine.session() as session:
        for follow_up in ("Critique that answer in detail please.", "Now rewrite the answer without the problems.",
                          None):
            replies.append(session.generate(chats, GREEDY, [0] * len(chats)))
            if follow_up:
                chats = [c + [{"role": "assistant", "content": r}, {"role": "user", "content": follow_up}]
                         for c, r in zip(chats, replies[-1])]
        return replies, session.turns


def test_next_turns_continue_the_previous_calls_cache_with_the_same_replies(engine):
    exemplar = [{"role": "user", "content": "An exemplar question " * 8}, {"role": "assistant", "content": "Yes. " * 8}]
    chats = [exemplar + [{"role": "user", "content": f"a question of its own number {i}, " * (1 + i)}]
             for i in range(5)]
    engine.reuse_turns, engine.min_shared_prefix = False, 16
    plain, _ = three_turns(engine, chats)
    engine.reuse_turns = True
    before = engine.stats.turn_tokens_reused
    reused, turns = three_turns(engine, chats)
    assert reused == plain
    # the second and third turns of every chat continued the sequence the call before had fed
    assert engine.stats.turn_tokens_reused - before > 2 * 5 * 40
    # what the last turn remembers (built on the stacked caches) equals each sequence encoded afresh
    import torch

    assert engine.share_prefix and all(start > 0 for _, start, _ in turns.sequences)
    for ids, start, layers in turns.sequences:
        with torch.inference_mode():
            fresh = out_cache(engine.model(input_ids=torch.tensor([ids]), use_cache=True))
        for (keys, values), layer in zip(layers, fresh.layers):
            assert torch.allclose(keys, layer.keys[0, :, start:], atol=1e-4)
            assert torch.allclose(values, layer.values[0, :, start:], atol=1e-4)


def test_a_prefix_held_once_gives_the_same_replies_as_one_copied_per_row(engine):
    exemplar = [{"role": "user", "content": "An exemplar question " * 8}, {"role": "assistant", "content": "Yes. " * 8}]
    chats = [exemplar + [{"role": "user", "content": f"question {i} " * (1 + i)}] for i in range(5)]
    engine.min_shared_prefix = 16
    engine.share_prefix = False
    copied, _ = three_turns(engine, chats)
    engine.share_prefix = True
    assert three_turns(engine, chats)[0] == copied
