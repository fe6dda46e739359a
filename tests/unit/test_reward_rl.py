"""The soft-label preference model (loss, label plumbing through TRL, calibration), RL prompts, and plan-time checks
of the reward_model and rl stages."""
from __future__ import annotations

import copy
import math
from collections import defaultdict
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from cai import graph
from cai.config import compose_run
from cai.errors import CaiError
from cai.training.calibration import calibration, pairwise_accuracy, sigmoid
from cai.training.prompts import prompt_of

LOGSIG_1 = math.log(sigmoid(1.0))  # log sigmoid(1) = -0.3132617


def fake_trainer(cls):
    """A trainer object with just what compute_loss reads (no model, no datasets, no accelerate state)."""
    trainer = cls.__new__(cls)
    trainer.model = SimpleNamespace(training=False)
    trainer.args = SimpleNamespace(center_rewards_coefficient=None)
    trainer.accelerator = SimpleNamespace(gather=lambda t: t, gather_for_metrics=lambda t: t)
    trainer._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    trainer._total_train_tokens, trainer._tp_size = 0, 1
    trainer.eval_pairs = ([], [])
    return trainer


def rewards_model(chosen, rejected):
    import torch

    logits = torch.tensor([[r] for r in [*chosen, *rejected]])  # TRL's batch: chosen rows, then rejected rows
    return lambda **inputs: SimpleNamespace(logits=logits)


def test_soft_loss_at_p1_is_trls_hard_loss_and_keeps_its_metrics():
    import torch
    from trl.trainer.reward_trainer import RewardTrainer

    from cai.training.reward_trainer import SoftRewardTrainer

    model, ids = rewards_model([2.0, 0.5], [1.0, 1.5]), {"input_ids": torch.zeros(4, 3, dtype=torch.long)}
    hard = RewardTrainer.compute_loss(fake_trainer(RewardTrainer), model, dict(ids))
    soft_trainer = fake_trainer(SoftRewardTrainer)
    soft = soft_trainer.compute_loss(model, {**ids, "p_chosen": torch.tensor([1.0, 1.0])})
    assert soft.item() == pytest.approx(hard.item()) == pytest.approx(-(LOGSIG_1 + math.log(sigmoid(-1.0))) / 2)
    assert soft_trainer._metrics["eval"]["accuracy"] == [0.5] and soft_trainer._metrics["eval"]["p_chosen"] == [1.0]
    assert soft_trainer.eval_pairs == ([1.0, -1.0], [1.0, 1.0])  # held-out margins and labels, for calibration


def test_soft_loss_by_hand_and_symmetric_at_one_half():
    import torch

    from cai.training.reward_trainer import soft_bt_loss

    one = torch.tensor([1.0])
    # -(0.7 log s(1) + 0.3 log s(-1)) and log s(-1) = log s(1) - 1
    assert soft_bt_loss(one, 0 * one, 0.7 * one).item() == pytest.approx(-LOGSIG_1 + 0.3)
    r_c, r_r, half = torch.tensor([2.0, -0.5]), torch.tensor([0.5, 1.0]), torch.tensor([0.5, 0.5])
    assert soft_bt_loss(r_c, r_r, half).item() == pytest.approx(soft_bt_loss(r_r, r_c, half).item())
    assert soft_bt_loss(one, one, 0.5 * one).item() == pytest.approx(math.log(2))  # the minimum at p = 0.5
    p = torch.tensor([0.8, 0.3])  # swapping sides is the same as flipping the label
    assert soft_bt_loss(r_c, r_r, p).item() == pytest.approx(soft_bt_loss(r_r, r_c, 1 - p).item())


def test_the_label_survives_remove_unused_columns_and_the_collator():
    from datasets import Dataset
    from transformers import Trainer

    from cai.training.reward_trainer import SoftPreferenceCollator, SoftRewardTrainer

    trainer = fake_trainer(SoftRewardTrainer)
    trainer._signature_columns, trainer.args = None, SimpleNamespace(remove_unused_columns=True)
    rows = Dataset.from_list([{"chosen_ids": [1, 2, 3], "rejected_ids": [4], "p_chosen": 0.7, "prompt": "x"},
                              {"chosen_ids": [5], "rejected_ids": [6, 7], "p_chosen": 0.6, "prompt": "y"}])
    kept = Trainer._remove_unused_columns(trainer, rows)
    assert set(kept.column_names) == {"chosen_ids", "rejected_ids", "p_chosen"}
    batch = SoftPreferenceCollator(pad_token_id=0)(list(kept))
    assert batch["input_ids"].tolist() == [[1, 2, 3], [5, 0, 0], [4, 0, 0], [6, 7, 0]]
    assert batch["p_chosen"].tolist() == pytest.approx([0.7, 0.6])


def test_calibration_on_synthetic_labels():
    labels = [0.55, 0.65, 0.75, 0.85, 0.95]
    exact = calibration([math.log(p / (1 - p)) for p in labels], labels, bins=5)  # sigmoid(margin) == label
    assert exact["ece"] == pytest.approx(0.0, abs=1e-12) and exact["pairwise_accuracy"] == 1.0
    assert exact["mean_p_model"] == pytest.approx(exact["mean_p_label"]) and exact["pairs"] == 5
    found = calibration([2.0, -1.0, 0.0], [1.0, 0.7, 0.5], bins=4)
    # bins [.25,.5): s(-1)=.269 vs .7; [.5,.75): .5 vs .5; [.75,1]: s(2)=.881 vs 1
    assert found["ece"] == pytest.approx((abs(sigmoid(-1.0) - 0.7) + abs(sigmoid(2.0) - 1.0)) / 3)
    assert found["pairwise_accuracy"] == 0.5 and found["mean_margin"] == pytest.approx(1 / 3)
    assert [r["count"] for r in found["table"]] == [0, 1, 1, 1]
    assert pairwise_accuracy([0.0, 1.0], [0.9, 0.5]) == 0.5  # a tie counts half; an unlabelled pair not at all
    assert pairwise_accuracy([1.0], [0.5]) is None  # nothing to be right about


@pytest.mark.parametrize("row, prompt", [
    ({"prompt": [{"role": "user", "content": "hi"}], "responses": ["a", "b"]}, [("user", "hi")]),
    ({"prompt": "plain text"}, [("user", "plain text")]),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
                   {"role": "user", "content": "q2"}, {"role": "assistant", "content": "a2"}]},
     [("user", "q"), ("assistant", "a"), ("user", "q2")]),
    ({"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}, [("user", "q")]),
    ({"prompt": "  "}, None), ({"chosen": [{"role": "assistant", "content": "a"}]}, None), ("text", None)])
def test_rl_prompts_end_at_the_last_user_turn(row, prompt):
    found = prompt_of(row)
    assert (found and [(m["role"], m["content"]) for m in found]) == prompt or (found is None and prompt is None)


@pytest.fixture(scope="module")
def tiny():
    return compose_run(["recipe=tiny"])


def plan_with(cfg, **values):
    """Plan a copy of `cfg` with `key=value` updates (no re-composition)."""
    cfg = copy.deepcopy(cfg)
    for key, value in values.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    return {n.name: n for n in graph.plan(cfg)}


@pytest.mark.parametrize("key, value, message", [
    ("pipeline.rl.trainer.max_completion_lenght", 8,
     r"pipeline.rl.trainer.max_completion_lenght: not a RLOOConfig argument; did you mean max_completion_length"),
    ("pipeline.rl.trainer.temperature", "hot", r"pipeline.rl.trainer.temperature: expected float, got 'hot'"),
    ("pipeline.rl.trainer.beta", 0.1, r"pipeline.rl.trainer.beta: set pipeline.rl.beta instead"),
    ("pipeline.rl.trainer.num_generations", 2, r"pipeline.rl.trainer.num_generations: set pipeline.rl.num_gen"),
    ("pipeline.rl.algorithm", "ppo", r"pipeline.rl.algorithm: 'ppo' is not available: TRL .* has no PPOTrainer"),
    ("pipeline.rl.algorithm", "a2c", r"pipeline.rl.algorithm: 'a2c' unknown; available: rloo, grpo"),
    ("pipeline.rl.beta", -1.0, r"pipeline.rl.beta: must be >= 0"),
    ("pipeline.rl.num_generations", 3, r"pipeline.rl.trainer: RLOOConfig rejected .*divisible by num_generations"),
    ("pipeline.rl.trainer.per_device_eval_batch_size", 6, r"per_device_eval_batch_size: 6 must be a multiple of"),
    ("pipeline.rl.inputs.reward", "sft", r"pipeline.rl.inputs.reward: 'sft' produces 'model' but rl needs "
                                         r"reward_model"),
    ("pipeline.rm.lora.merge", False, r"pipeline.rm.lora.merge: reward models are saved merged"),
    ("pipeline.rm.trainer.center_reward_coefficient", 0.01, r"pipeline.rm.trainer.center_reward_coefficient: not a "
                                                            r"RewardConfig argument; did you mean center_rewards"),
])
def test_rl_and_reward_model_errors_name_the_key(tiny, key, value, message):
    with pytest.raises(CaiError, match=message):
        plan_with(tiny, **{key: value})


def test_grpo_plans_and_is_its_own_node(tiny):
    rloo = plan_with(tiny)
    grpo = plan_with(tiny, **{"pipeline.rl.algorithm": "grpo"})
    assert grpo["rl"].key != rloo["rl"].key and grpo["rm"].key == rloo["rm"].key
    assert dict(graph.describe_inputs(grpo["rl"])) == {"model": "sft", "reward": "rm", "mixture.0": "prefs"}
    assert grpo["rm"].stage.produces == "reward_model"
