"""launcher=accelerate with 2 processes of DDP on the CPU (gloo, conf/accelerate/multi_cpu.yaml): sft and
reward_model on the tiny model train across both ranks, their training loss falls, and the artifacts load."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.integration.test_tiny_pipeline import plan_of

pytestmark = pytest.mark.cluster
DDP = ["launcher=accelerate", "accelerate_config=multi_cpu", "trainer.max_steps=6", "trainer.logging_steps=1"]


def test_sft_and_reward_model_train_with_two_ddp_processes_on_cpu(tmp_path):
    # hard labels for rm: the tiny judge's soft labels sit near 0.5, where the soft loss cannot fall below ln 2
    args = ["recipe=tiny", "targets=[sft,rm]", *(f"pipeline.{node}.{a}" for node in ("sft", "rm") for a in DDP),
            "pipeline.rm.soft_labels=false", "pipeline.rm.trainer.learning_rate=1.0e-2"]
    proc = run_cli(*args, home=tmp_path, check=True, timeout=900)
    assert "accelerate.commands.launch --config_file" in proc.stdout and "multi_cpu.yaml" in proc.stdout
    plan = plan_of(proc)
    for node in ("sft", "rm"):
        metrics = json.loads((Path(plan[node]["path"]) / "metrics.json").read_text())
        assert metrics["processes"] == 2 and metrics["device"].startswith("cpu"), node
        losses = [h["loss"] for h in metrics["log_history"] if "loss" in h]
        assert len(losses) == 6 and losses[-1] < losses[0], (node, losses)  # the training loss fell over both ranks
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    ids = torch.tensor([[5, 6, 7, 8, 9]])
    AutoModelForCausalLM.from_pretrained(Path(plan["sft"]["path"]) / "model").generate(ids, max_new_tokens=3,
                                                                                       do_sample=False)
    scores = AutoModelForSequenceClassification.from_pretrained(Path(plan["rm"]["path"]) / "model")(ids).logits
    assert scores.shape == (1, 1) and torch.isfinite(scores).all()
