"""Plan-time checks of training stages: the pass-through `trainer:` dict against TRL's config classes, LoRA,
launchers, soft labels, and mixture sources seen by the graph (references, types, keys)."""
from __future__ import annotations

import copy
import enum
from typing import Dict, List, Optional, Union

import pytest
from omegaconf import OmegaConf

from cai import graph
from cai.config import compose_run
from cai.errors import CaiError
from cai.training.trainer_args import conforms


class Color(enum.Enum):
    RED = "red"


@pytest.mark.parametrize("value, hint, ok", [
    (1, float, True), (1.5, int, False), (True, int, False), ("abc", float, False), (None, Optional[int], True),
    ("red", Union[Color, str], True), ("blue", Union[Color, str], False), ("x", List[str], True),
    ([1, "a"], List[str], False), ({"a": 1}, Dict[str, int], True), ("auto", Union[int, str, None], True)])
def test_conforms(value, hint, ok):
    assert conforms(value, hint) is ok


@pytest.fixture(scope="module")
def tiny():
    return compose_run(["recipe=tiny"])


def plan(*overrides: str):
    return graph.plan(compose_run(["recipe=tiny", *overrides]))


def plan_with(cfg, **values):
    """Plan a copy of `cfg` with `key=value` updates (no re-composition: Hydra composing is the slow part)."""
    cfg = copy.deepcopy(cfg)
    for key, value in values.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    return graph.plan(cfg)


@pytest.mark.parametrize("overrides", [
    ["pipeline.sft.trainer.learning_rate=abc"], ["+pipeline.sft.trainer.lerning_rate=1"]])
def test_trainer_errors_from_the_command_line_name_the_key(overrides):
    with pytest.raises(CaiError, match=r"pipeline.sft.trainer.(learning_rate: expected float, got 'abc'|"
                                       r"lerning_rate: not a SFTConfig argument; did you mean learning_rate)"):
        plan(*overrides)


@pytest.mark.parametrize("key, value, message", [
    ("pipeline.sft.trainer.lr_scheduler_type", "cosinee", r"pipeline.sft.trainer.lr_scheduler_type: expected one of"),
    ("pipeline.dpo.trainer.output_dir", "/tmp/x", r"pipeline.dpo.trainer.output_dir: not settable here"),
    ("pipeline.dpo.trainer.beta", "high", r"pipeline.dpo.trainer.beta: expected float"),
    ("pipeline.sft.lora.r", 0, r"pipeline.sft.lora: need r >= 1"),
    ("pipeline.sft.launcher", "slurm", r"pipeline.sft.launcher: 'slurm' unknown; available: inprocess, subprocess"),
    ("pipeline.sft.format", "chat", r"pipeline.sft.format: 'chat' unknown"),
    ("pipeline.dpo.dtype", "bf16", r"pipeline.dpo.dtype: 'bf16' unknown; available: null, auto, bfloat16"),
    ("pipeline.dpo.mixture", [], r"pipeline.dpo.mixture: empty"),
    ("pipeline.dpo.mixture", [{"source": "sl_data", "weight": 0}], r"pipeline.dpo.mixture.0.weight: must be > 0"),
    ("pipeline.sft.accelerate_config", "tpu", r"accelerate_config: 'tpu' unknown; available: cpu, deepspeed_zero3"),
])
def test_training_config_errors_name_the_key(tiny, key, value, message):
    launcher = {"pipeline.sft.launcher": "accelerate"} if key.endswith("accelerate_config") else {}
    with pytest.raises(CaiError, match=message):
        plan_with(tiny, **launcher, **{key: value})


def test_soft_labels_need_a_loss_that_reads_label_smoothing(tiny):
    plan_with(tiny, **{"pipeline.dpo.soft_labels": True})  # TRL's robust loss by default
    with pytest.raises(CaiError, match=r"pipeline.dpo.soft_labels: loss_type \['sigmoid'\] ignores label_smoothing"):
        plan_with(tiny, **{"pipeline.dpo.soft_labels": True, "pipeline.dpo.trainer.loss_type": "sigmoid"})


def test_mixture_sources_are_graph_inputs(tiny):
    uri = "hf://HuggingFaceH4/ultrachat_200k?split=train_sft&field=messages"
    nodes = {n.name: n for n in plan(f"pipeline.sft.mixture=[{{source:sl_data}},{{source:'{uri}',weight:0.1}}]")}
    assert dict(graph.describe_inputs(nodes["sft"])) == {"model": "models.base", "mixture.0": "sl_data",
                                                         "mixture.1": uri}
    mixture = [{"source": "sl_data"}, {"source": uri, "weight": 0.2}]
    reweighted = {n.name: n.key for n in plan_with(tiny, **{"pipeline.sft.mixture": mixture})}
    assert reweighted["sl_data"] == nodes["sl_data"].key and reweighted["sft"] != nodes["sft"].key
    assert reweighted["dpo"] != nodes["dpo"].key  # downstream of the changed sft


def test_mixture_references_are_checked(tiny):
    with pytest.raises(CaiError, match=r"pipeline.sft.mixture.0.source: unknown node 'sl_dat'; did you mean sl_data"):
        plan_with(tiny, **{"pipeline.sft.mixture": [{"source": "sl_dat"}]})
    with pytest.raises(CaiError, match=r"pipeline.dpo.mixture.0.source: 'sft' produces 'model' but dpo needs "
                                       r"conversations or preferences or data"):
        plan_with(tiny, **{"pipeline.dpo.mixture": [{"source": "sft"}]})


def test_launcher_is_not_part_of_the_key(tiny):
    keys = {n.name: n.key for n in graph.plan(tiny)}
    assert {n.name: n.key for n in plan_with(tiny, **{"pipeline.sft.launcher": "subprocess"})} == keys


def test_recipes_plan():
    for recipe in ("smol_sl", "hh_mistral_dpo"):
        names = [n.name for n in graph.plan(compose_run([f"recipe={recipe}"]))]
        assert names[-1] in ("sft", "dpo") and "sl_data" in names


def test_resume_picks_the_newest_complete_checkpoint(tmp_path):
    from cai.training.common import last_checkpoint

    for step, complete in ((2, True), (4, True), (6, False)):  # 6: killed while saving
        (tmp_path / f"checkpoint-{step}").mkdir()
        if complete:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert last_checkpoint(tmp_path).name == "checkpoint-4"
    assert not (tmp_path / "checkpoint-6").exists()
    assert last_checkpoint(tmp_path / "none") is None
