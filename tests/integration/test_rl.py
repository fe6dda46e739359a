"""RL-CAI training on recipe=tiny: the soft-label reward model (LoRA, merged) on the labeled preferences, then RLOO
and GRPO against it from the SFT policy; artifacts load with plain transformers, curves and calibration are kept."""
from __future__ import annotations

import json

import pytest

from cai import runner
from cai.config import compose_run
from tests.integration.test_training import one_thread  # noqa: F401  (fixture)


@pytest.fixture(scope="module")
def tiny_rl(tmp_path_factory):
    """recipe=tiny up to rl (sl_data, sft, pairs, prefs, rm, rl), once for this module, in its own store."""
    home = tmp_path_factory.mktemp("rl_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("CAI_HOME", str(home))
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = {r.node.name: r for r in runner.run(compose_run(["recipe=tiny", "targets=[rl]"]), home / "run")}
        yield home, results
    finally:
        torch.set_num_threads(threads)
        mp.undo()


def test_reward_model_trains_on_soft_labels_and_reports_calibration(tiny_rl):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    _, results = tiny_rl
    rm = results["rm"]
    metrics = rm.metrics
    assert rm.status == "ran" and metrics["steps"] == 4 and metrics["eval_examples"] == 2
    for key in ("eval_reward_accuracy", "eval_ece", "eval_reward_margin", "eval_reward_accuracy_before"):
        assert isinstance(metrics[key], float), key
    assert sum(row["count"] for row in metrics["calibration"]) == 2
    # the soft labels reached the loss: the trainer logs the mean p_chosen of each batch, and AI labels are < 1
    logged = [row["p_chosen"] for row in metrics["curve"]]
    assert len(logged) == 4 and all(0.5 <= p <= 1.0 for p in logged) and min(logged) < 1.0
    labels = [json.loads(line)["p_chosen"] for line in (results["prefs"].path / "data.jsonl").read_text().splitlines()]
    assert min(labels) < 1.0
    folder = rm.path / "model"
    assert not (folder / "adapter_config.json").exists()  # LoRA merged: one plain folder
    model, tokenizer = AutoModelForSequenceClassification.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    assert model.config.num_labels == 1 and tokenizer.pad_token and model.config.pad_token_id == tokenizer.pad_token_id
    assert "Held-out pairs scored by the trained reward model (2)" in (rm.path / "samples.md").read_text()


def test_rloo_logs_reward_kl_and_length_and_saves_the_policy(tiny_rl):
    from transformers import AutoModelForCausalLM

    _, results = tiny_rl
    rl = results["rl"]
    metrics = rl.metrics
    assert rl.status == "ran" and metrics["steps"] == 2 and metrics["algorithm"] == "rloo"
    assert [row["step"] for row in metrics["curve"]] == [1, 2]
    for row in metrics["curve"]:
        assert {"reward", "kl", "completions/mean_length", "loss"} <= set(row)
    # the KL reference is the starting policy (TRL reloads it from the sft folder, adapter and all): at the first
    # step the policy has not moved yet
    assert abs(metrics["curve"][0]["kl"]) < 1e-2
    assert metrics["final_reward"] == metrics["curve"][-1]["reward"] and metrics["final_completion_length"] > 0
    assert isinstance(metrics["eval_reward_before"], float) and isinstance(metrics["eval_reward"], float)
    assert metrics["train_prompts"] == 3 and metrics["eval_prompts"] == 1
    AutoModelForCausalLM.from_pretrained(rl.path / "model")
    assert "Reward of the trained answer" in (rl.path / "samples.md").read_text()


def test_grpo_reuses_the_reward_model(tiny_rl, tmp_path, one_thread):  # noqa: F811
    home, _ = tiny_rl
    mp = pytest.MonkeyPatch()
    mp.setenv("CAI_HOME", str(home))
    try:
        results = {r.node.name: r for r in runner.run(
            compose_run(["recipe=tiny", "targets=[rl]", "pipeline.rl.algorithm=grpo", "pipeline.rl.beta=0.1"]),
            tmp_path / "run")}
    finally:
        mp.undo()
    assert results["rm"].status == "cached" and results["rl"].status == "ran"
    metrics = results["rl"].metrics
    assert metrics["algorithm"] == "grpo" and metrics["steps"] == 2
    assert {"reward", "kl", "completions/mean_length"} <= set(metrics["curve"][-1])
