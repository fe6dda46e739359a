"""Model loading options: int8 dynamic quantization for CPU inference, checked at plan time, sharing converted weights."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from cai import graph
from cai.config import compose_run
from cai.errors import CaiError
from cai.schema import ModelSpec

torch = pytest.importorskip("torch")
GREEDY = OmegaConf.create({"temperature": 1.0, "top_p": 1.0, "top_k": 0, "do_sample": False,
                           "max_new_tokens": 6, "repetition_penalty": 1.0})


def tiny_spec(**fields):
    return OmegaConf.merge(OmegaConf.structured(ModelSpec), {"source": "tiny_random", "dtype": "float32", **fields})


@pytest.mark.parametrize("key, value", [("quantize", "int4"), ("dtype", "fp8")])
def test_unknown_loading_options_fail_at_plan_time_naming_the_key(cai_home, key, value):
    cfg = compose_run(["recipe=tiny", f"models.judge.{key}={value}"])
    with pytest.raises(CaiError, match=rf"models\.judge\.{key}: '{value}' unknown; available: "):
        graph.plan(cfg)


def test_quantize_changes_the_keys_of_nodes_that_read_the_model(cai_home):
    keys = lambda *o: {n.name: n.key for n in graph.plan(compose_run(["recipe=tiny", *o]))}  # noqa: E731
    base, quantized = keys(), keys("models.judge.quantize=int8")
    assert base["sl_data"] == quantized["sl_data"]  # the generator is untouched
    assert base["prefs"] != quantized["prefs"]  # the judge's scores change with rounding


def test_int8_engine_scores_near_fp32_and_reuses_the_converted_weights(shared_home):
    from cai.engines.hf import HFEngine
    from cai.models import checkpoint

    plain, quantized = HFEngine(tiny_spec(), shared_home), HFEngine(tiny_spec(quantize="int8"), shared_home)
    assert checkpoint(tiny_spec(), shared_home) == checkpoint(tiny_spec(quantize="int8"), shared_home)
    assert isinstance(quantized.model.model.layers[0].mlp.up_proj, torch.ao.nn.quantized.dynamic.Linear)
    assert type(quantized.model.lm_head) is torch.nn.Linear  # the output head keeps full precision
    prompts, options = ["Which is better?\n\nAnswer:", "Pick one:"], [[" (A)", " (B)"], [" yes", " no"]]
    want, got = plain.choice_logprobs(prompts, options), quantized.choice_logprobs(prompts, options)
    assert got != want  # int8 really ran ...
    assert got == [pytest.approx(w, abs=0.05) for w in want]  # ... and only rounding moved the scores
    chats = [[{"role": "user", "content": "Say something."}]]
    assert quantized.generate(chats, GREEDY, [0]) == quantized.generate(chats, GREEDY, [0])
