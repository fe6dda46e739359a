"""The contract every registered engine keeps, run on each: scripted and hf on the tiny model (default run), vllm
in process and openai against a real vllm serve on the embedded SmolLM2 in float32 (`pytest -m "vllm or server"`):
deterministic rows seeded per example and independent of their batch, stops honoured, sessions that continue chats
without changing replies, option scoring, and a lifecycle."""
from __future__ import annotations

import math

import pytest
from omegaconf import OmegaConf

from cai.config import compose_run
from cai.engines.base import ALL
from cai.registry import get_engine
from tests.engines.conftest import served_spec, vllm_spec

SAMPLED = OmegaConf.create({"temperature": 1.5, "top_p": 0.95, "top_k": 0, "do_sample": True,
                            "max_new_tokens": 10, "repetition_penalty": 1.1})
GREEDY = OmegaConf.merge(SAMPLED, {"do_sample": False})
CHATS = [[{"role": "user", "content": f"Tell me about topic {i}." + " Please." * i}] for i in range(5)]
SEEDS = [11, 22, 33, 44, 55]


def tiny_spec(engine: str):
    spec = compose_run(["recipe=tiny"]).models.generator
    spec.engine = engine
    return spec


def spec_for(name: str, request):
    if name == "vllm":
        return vllm_spec()
    if name == "openai":
        return served_spec(request.getfixturevalue("vllm_server"))
    return tiny_spec(name)


@pytest.fixture(scope="module", params=["scripted", "hf", pytest.param("vllm", marks=pytest.mark.vllm),
                                        pytest.param("openai", marks=pytest.mark.server)])
def opened(request, tmp_path_factory):
    """An engine of each kind, opened once for the module."""
    spec = spec_for(request.param, request)
    home = request.getfixturevalue("smol_home") if request.param in ("vllm", "openai") else tmp_path_factory.mktemp("h")
    engine = get_engine(request.param).factory(spec, home)
    yield request.param, engine, spec
    engine.close()


def test_capabilities_are_declared(opened):
    name, engine, spec = opened
    declared = get_engine(name).capabilities(spec)
    assert declared.can == ALL and declared.local_weights == (name != "openai")


def test_a_row_depends_on_its_seed_not_on_its_batch(opened):
    _, engine, _ = opened
    together = engine.generate(CHATS, SAMPLED, SEEDS)
    assert len(together) == len(CHATS) and all(isinstance(r, str) for r in together)
    assert engine.generate(CHATS, SAMPLED, SEEDS) == together
    assert [engine.generate([c], SAMPLED, [s])[0] for c, s in zip(CHATS, SEEDS)] == together
    assert engine.generate(CHATS[::-1], SAMPLED, SEEDS[::-1]) == together[::-1]
    assert engine.generate(CHATS, SAMPLED, [s + 1 for s in SEEDS]) != together


def test_one_seed_per_chat_is_required(opened):
    _, engine, _ = opened
    with pytest.raises(ValueError, match="seeds"):
        engine.generate(CHATS, SAMPLED, SEEDS[:2])


def test_replies_stop_at_the_end_of_turn(opened):
    _, engine, _ = opened
    for reply in engine.generate(CHATS, GREEDY, SEEDS) + engine.generate(CHATS, SAMPLED, SEEDS):
        assert "<|im_end|>" not in reply and "<|im_start|>" not in reply


def test_a_session_continues_chats_without_changing_replies(opened):
    _, engine, _ = opened
    follow_up = {"role": "user", "content": "Now say it differently."}

    def two_turns(generator):
        first = generator.generate(CHATS, GREEDY, SEEDS)
        chats = [c + [{"role": "assistant", "content": r}, follow_up] for c, r in zip(CHATS, first)]
        return first, generator.generate(chats, GREEDY, SEEDS)

    plain = two_turns(engine)
    with engine.session() as session:
        assert two_turns(session) == plain


def test_option_scoring_of_text_and_continued_chats(opened):
    _, engine, _ = opened
    raw = "Question: which letter comes first?\n\nThe answer is: ("
    chat = [{"role": "user", "content": "Which letter comes first?"}, {"role": "assistant", "content": "It is ("}]
    scores = engine.choice_logprobs([raw, chat], [["A", "B"], ["A", "B"]])
    assert [len(s) for s in scores] == [2, 2]
    assert all(math.isfinite(x) and x <= 0 for row in scores for x in row)
    swapped = engine.choice_logprobs([raw, chat], [["B", "A"], ["B", "A"]])
    assert [x for row in swapped for x in row[::-1]] == pytest.approx([x for row in scores for x in row], abs=1e-5)
    longer = engine.choice_logprobs([raw], [["A) first", "B) second"]])[0]
    assert len(longer) == 2 and all(math.isfinite(x) and x <= 0 for x in longer)


def test_describe_names_the_engine(opened):
    name, engine, _ = opened
    assert engine.describe()["engine"] == name


def test_close_ends_the_lifecycle(tmp_path):
    spec = tiny_spec("hf")
    with get_engine("hf").factory(spec, tmp_path) as engine:
        assert engine.generate(CHATS[:1], GREEDY, SEEDS[:1])
    assert engine.model is None
