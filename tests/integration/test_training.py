"""Training stages end to end on the tiny model: recipe=tiny (sl_data -> sft -> dpo), LoRA artifacts merged and
unmerged loading with transformers, a SIGKILLed SFT resuming from its last checkpoint, launcher failures, plans."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cai import runner
from cai.config import compose_run
from cai.errors import CaiError
from tests.conftest import ROOT, run_cli


@pytest.fixture
def one_thread(monkeypatch):
    """Tiny models on a shared 2-core machine run ~10x faster with one torch thread (no contended spinning)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(before)


def conversations(path: Path, count: int = 40) -> str:
    rows = [{"messages": [{"role": "user", "content": f"What is {i} plus {i}?"},
                          {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]} for i in range(count)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f"file://{path}"


def test_tiny_recipe_trains_sft_and_dpo_then_is_cached(cai_home, tmp_path, one_thread):
    # dpo on SL-CAI pairs and on labeled preferences (type `preferences`, read from the prefs node's hf/)
    cfg = compose_run(["recipe=tiny", "targets=[dpo]", "pipeline.sl_data.limit=6",
                       "pipeline.dpo.mixture=[{source:sl_data},{source:prefs}]"])
    results = {r.node.name: r for r in runner.run(cfg, tmp_path / "run1")}
    sft, dpo = results["sft"].metrics, results["dpo"].metrics
    assert sft["steps"] == 4 and sft["eval_loss"] < sft["eval_loss_before"]
    assert len(sft["loss_curve"]) == 4 and sft["mixture"][0]["source"] == "sl_data"
    assert dpo["steps"] == 4 and "eval_reward_accuracy" in dpo and "rewards/margins" in dpo["curve"][-1]
    assert [m["source"] for m in dpo["mixture"]] == ["sl_data", "prefs"] and dpo["mixture"][1]["rows"] > 0
    assert (results["dpo"].path / "samples.md").read_text().count("**Trained model:**") == 1
    again = runner.run(cfg, tmp_path / "run2")
    assert {r.status for r in again} == {"cached"}
    check_lora_artifacts(results["sft"].path / "model", results["dpo"].path / "model")


def check_lora_artifacts(unmerged: Path, merged: Path) -> None:
    """Both load with plain from_pretrained, keep the chat template; the unmerged one applies its adapter."""
    import torch
    from omegaconf import OmegaConf
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cai.training.lora import load_model

    assert (unmerged / "adapter_config.json").is_file() and not (merged / "adapter_config.json").exists()
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with_adapter = AutoModelForCausalLM.from_pretrained(unmerged)
    assert getattr(with_adapter, "_hf_peft_config_loaded", False)
    spec = OmegaConf.create({"source": "local", "path": str(unmerged), "revision": "main", "trust_remote_code": False})
    folded = load_model(spec, unmerged, torch.float32)  # what a downstream stage trains from
    assert torch.allclose(with_adapter(ids).logits, folded(ids).logits, atol=1e-4)
    for folder in (unmerged, merged):
        assert AutoTokenizer.from_pretrained(folder).chat_template
        AutoModelForCausalLM.from_pretrained(folder).generate(ids, max_new_tokens=3, do_sample=False)


def test_sigkilled_sft_resumes_from_last_checkpoint(cai_home, tmp_path, monkeypatch, caplog, one_thread):
    source = conversations(tmp_path / "conv.jsonl")
    args = ["recipe=tiny", "targets=[sft]", "pipeline.sft.launcher=subprocess", "pipeline.sft.trainer.max_steps=40",
            "pipeline.sft.trainer.save_steps=1", f"pipeline.sft.mixture=[{{source:'{source}'}}]"]
    env = {**os.environ, "CAI_HOME": str(cai_home), "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen([sys.executable, "-m", "cai", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    partial = cai_home / "store" / ".partial"
    deadline = time.time() + 180
    while not list(partial.glob("*/checkpoints/checkpoint-*/trainer_state.json")):
        assert first.poll() is None and time.time() < deadline, "no checkpoint before the run ended"
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)  # the training child dies with it (PR_SET_PDEATHSIG / parent watch)
    first.wait()
    # the rerun resumes in this process (the launcher is not part of the key, so it is the same partial node)
    caplog.set_level("INFO", logger="cai")
    [result] = runner.run(compose_run([*args, "pipeline.sft.launcher=inprocess"]), tmp_path / "rerun")
    assert result.status == "ran" and "sft: resuming from checkpoint-" in caplog.text
    assert result.metrics["resumed_from"].startswith("checkpoint-") and result.metrics["steps"] == 40
    assert not (result.path / "checkpoints").exists()  # dropped once the model is saved


def test_subprocess_failure_reports_the_childs_last_lines(cai_home, tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"messages": [{"role": "user", "content": "no answer"}]}) + "\n")
    cfg = compose_run(["recipe=tiny", "targets=[sft]", "pipeline.sft.launcher=subprocess",
                       f"pipeline.sft.mixture=[{{source:'file://{empty}'}}]"])
    with pytest.raises(CaiError, match=r"(?s)the subprocess training process exited with code 2.*"
                                       r"error: pipeline.sft.mixture.0: no conversations ending in an assistant"):
        runner.run(cfg, tmp_path / "run")


def test_hh_mistral_dpo_plans_without_downloading(cai_home, tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    caplog.set_level("INFO", logger="cai")
    assert runner.run(compose_run(["recipe=hh_mistral_dpo", "dry_run=true"]), tmp_path / "run") == []
    shown = capsys.readouterr().out + caplog.text
    for expected in ("critique_revision", "ultrachat_200k", "ultrafeedback_binarized",
                     "accelerate.commands.launch --config_file", "deepspeed_zero3.yaml"):
        assert expected in shown
    assert not (tmp_path / "hf").exists() and not (cai_home / "store" / "model").exists()


def test_bad_trainer_value_fails_before_any_model_loads(cai_home, tmp_path):
    with pytest.raises(CaiError, match="pipeline.sft.trainer.learning_rate: expected float, got 'abc'"):
        runner.run(compose_run(["recipe=tiny", "pipeline.sft.trainer.learning_rate=abc"]), tmp_path / "run")
    assert not (cai_home / "store" / "model").exists()  # the tiny model was never built


@pytest.mark.slow
def test_accelerate_launcher_runs_single_process_on_cpu(cai_home, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    source = conversations(tmp_path / "conv.jsonl", count=12)
    proc = run_cli("recipe=tiny", "targets=[sft]", "pipeline.sft.launcher=accelerate",
                   "pipeline.sft.accelerate_config=cpu", f"pipeline.sft.mixture=[{{source:'{source}'}}]",
                   home=cai_home, check=True, timeout=400)
    assert "accelerate.commands.launch --config_file" in proc.stdout + proc.stderr
    assert list((cai_home / "store" / "sft").glob("*/model/config.json"))


def test_report_to_tensorboard_writes_event_files_into_the_artifact(cai_home, tmp_path, one_thread):
    data = conversations(tmp_path / "chats.jsonl", 8)
    cfg = compose_run(["recipe=tiny", "targets=[sft]", f"pipeline.sft.mixture=[{{source: '{data}'}}]",
                       "pipeline.sft.trainer.max_steps=2", "+pipeline.sft.trainer.report_to=tensorboard",
                       "pipeline.sft.trainer.logging_steps=1"])
    [result] = runner.run(cfg, tmp_path / "run")
    events = list((result.path / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0 and not (result.path / "checkpoints").exists()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    scalars = EventAccumulator(str(result.path / "tensorboard")).Reload().Tags()["scalars"]
    assert "train/loss" in scalars


def test_an_integration_that_is_not_installed_fails_at_plan_time(cai_home, tmp_path, monkeypatch):
    import transformers.integrations

    monkeypatch.setattr(transformers.integrations, "get_available_reporting_integrations", lambda: [])
    with pytest.raises(CaiError, match=r"pipeline.sft.trainer.report_to: tensorboard is not installed \(pip install"):
        runner.run(compose_run(["recipe=tiny", "targets=[sft]", "+pipeline.sft.trainer.report_to=tensorboard"]),
                   tmp_path / "run")
