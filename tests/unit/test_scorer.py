"""Option scoring on the tiny random llama: exact against one full pass per option, and the passes it takes."""
from __future__ import annotations

import random

import pytest
from omegaconf import OmegaConf

from cai.schema import ModelSpec

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def engine(shared_home):
    from cai.engines.hf import HFEngine

    spec = OmegaConf.merge(OmegaConf.structured(ModelSpec), {"source": "tiny_random", "dtype": "float32"})
    return HFEngine(spec, shared_home)


def naive(model, prompt, option):
    """The straightforward score: run prompt + option, sum the option tokens' log-probs."""
    with torch.inference_mode():
        logp = model(input_ids=torch.tensor([prompt + option], device=model.device)).logits.float().log_softmax(-1)[0]
    return sum(float(logp[len(prompt) - 1 + j, t]) for j, t in enumerate(option))


def count_passes(model, monkeypatch):
    calls = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda *a, **k: calls.append(k["input_ids"].shape) or forward(*a, **k))
    return calls


def random_case(seed=0):
    rng = random.Random(seed)
    shared = [rng.randrange(3, 250) for _ in range(40)]
    prompts, options = [], []
    for i in range(10):
        prompts.append((shared if i % 2 else []) + [rng.randrange(3, 250) for _ in range(rng.randrange(2, 25))])
        options.append([[[5], [6], [7]], [[9, 5, 8], [9, 6], [9, 6, 1, 2]], [[3, 4], [4, 3]]][i % 3])
    return prompts, options


@pytest.fixture(scope="module")
def reference(engine):
    prompts, options = random_case()
    return prompts, options, [[naive(engine.model, p, o) for o in opts] for p, opts in zip(prompts, options)]


@pytest.mark.parametrize("limits", [{}, {"max_size": 1}, {"min_shared": 0}, {"max_tokens": 90}])
def test_batched_scores_equal_a_full_pass_per_option(engine, reference, limits):
    from cai.engines.hf_scoring import option_logprobs

    prompts, options, want = reference
    got = option_logprobs(engine.model, prompts, options, engine.tokenizer.pad_token_id, **limits)
    assert got == [pytest.approx(w, abs=1e-4) for w in want]


def test_single_token_options_take_one_pass_per_ordering(engine, monkeypatch):
    from cai.engines.hf_scoring import option_logprobs

    rng = random.Random(1)
    prompts = [[rng.randrange(3, 250) for _ in range(16)] for i in range(6)]  # 3 comparisons x 2 orders
    options = [[[65], [66]]] * 6  # "A", "B"
    calls = count_passes(engine.model, monkeypatch)
    option_logprobs(engine.model, prompts, options, 0, max_size=1, min_shared=0)
    assert len(calls) == 6  # each ordering's prompt runs once; both options come from its last position
    calls.clear()
    option_logprobs(engine.model, prompts, options, 0, min_shared=0)
    assert len(calls) == 1 and calls[0][0] == 6  # batched: all orderings in one pass


def test_multi_token_options_add_one_short_pass_not_a_pass_per_option(engine, monkeypatch):
    from cai.engines.hf_scoring import option_logprobs

    prompts = [[40 + i for i in range(20)], [60 + i for i in range(20)]]
    options = [[[1, 2, 65, 9], [1, 2, 66, 9], [1, 2, 67, 9]]] * 2  # " (A)", " (B)", " (C)" share " ("
    calls = count_passes(engine.model, monkeypatch)
    got = option_logprobs(engine.model, prompts, options, 0, min_shared=0)
    assert [shape[1] for shape in calls] == [22, 1]  # prompt + " (" once; then the ")" after each letter
    assert calls[1][0] == 6  # one cache row per (prompt, option)
    want = [[naive(engine.model, p, o) for o in opts] for p, opts in zip(prompts, options)]
    assert got == [pytest.approx(w, abs=1e-4) for w in want]


def test_a_shared_prefix_runs_once_for_its_group(engine, monkeypatch):
    from cai.engines.hf_scoring import option_logprobs

    prefix = [random.Random(2).randrange(3, 250) for _ in range(64)]
    prompts = [prefix + [100 + i, 101, 102 + i] for i in range(4)]
    calls = count_passes(engine.model, monkeypatch)
    got = option_logprobs(engine.model, prompts, [[[65], [66]]] * 4, 0, min_shared=32)
    assert [tuple(s) for s in calls] == [(1, 64), (4, 3)]  # the shared 64 tokens once, then each row's own 3
    assert got == [pytest.approx([naive(engine.model, p, [65]), naive(engine.model, p, [66])], abs=1e-4)
                   for p in prompts]


def test_groups_extend_the_prefix_every_prompt_shares(engine, monkeypatch):
    from cai.engines.hf_scoring import option_logprobs

    rng = random.Random(3)
    root, left, right = ([rng.randrange(3, 250) for _ in range(n)] for n in (48, 40, 40))
    prompts = [root + branch + [200 + i, 7] for branch in (left, right) for i in range(3)] + [root + [9, 9, 9]]
    calls = count_passes(engine.model, monkeypatch)
    got = option_logprobs(engine.model, prompts, [[[65], [66]]] * 7, 0, min_shared=32)
    # the exemplars everyone shares once, each group's own 40 once on top, then the rows' own tokens
    assert sorted(tuple(s) for s in calls) == sorted([(1, 48), (1, 40), (1, 40), (3, 2), (3, 2), (1, 3)])
    assert got == [pytest.approx([naive(engine.model, p, [65]), naive(engine.model, p, [66])], abs=1e-4)
                   for p in prompts]


def test_engine_renders_chats_and_raw_text_and_counts_stats(engine):
    chat = [{"role": "user", "content": "Which is better?"}, {"role": "assistant", "content": "The answer is: ("}]
    raw = "\n\nWhich is better?\n\nThe answer is:"
    before = engine.stats.prompts
    got = engine.choice_logprobs([chat, raw], [["A", "B"], [" (A)", " (B)"]])
    encode = lambda text: engine.tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
    text = "<|im_start|>user\nWhich is better?<|im_end|>\n<|im_start|>assistant\nThe answer is: ("
    assert got[0] == pytest.approx([naive(engine.model, encode(text), encode(o)) for o in "AB"], abs=1e-4)
    assert got[1] == pytest.approx([naive(engine.model, encode(raw), encode(o)) for o in (" (A)", " (B)")], abs=1e-4)
    assert engine.stats.prompts == before + 2 and engine.has_chat_template()


def test_empty_prompts_and_options_are_refused():
    from cai.engines.options import prepare

    with pytest.raises(ValueError, match="empty"):
        prepare(0, [], [[1]])
    with pytest.raises(ValueError, match="at least one token"):
        prepare(0, [1], [[1], []])
    assert prepare(0, [5], [[1, 2], [1, 2, 3]]).tails == [[2], [2, 3]]  # each option keeps a token of its own
