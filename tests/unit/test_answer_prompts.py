"""The answer_prompts stage (helpful data for the SFT mixture) on the scripted engine: records, hf/ export, resume."""
from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from cai.engines.scripted import ScriptedEngine
from cai.stages.answer_prompts import AnswerPromptsConfig, answer_prompts
from cai.stage_api import Input, StageContext
from cai.training.examples import sft_example


def make_ctx(tmp_path: Path, engine) -> StageContext:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"How do I bake bread {i}?"}) + "\n" for i in range(5)))
    cfg = OmegaConf.structured(AnswerPromptsConfig)
    cfg.inputs.prompts, cfg.chunk_size = f"file://{prompts}", 2
    (tmp_path / "work").mkdir(exist_ok=True)
    inputs = {"generator": Input("model", "generator", spec=OmegaConf.create({"engine": "scripted"}))}
    return StageContext("helpful", cfg, inputs, tmp_path / "work", tmp_path, 0, {}, lambda spec, home: engine)


def test_answers_become_sft_conversations_and_resume(tmp_path):
    from datasets import load_from_disk

    script = lambda chat: "" if chat[-1]["content"].endswith("3?") else "Knead, rise, bake."  # noqa: E731
    metrics = answer_prompts(make_ctx(tmp_path, ScriptedEngine(script)))
    assert metrics["records"] == 5 and metrics["empty_answers"] == 1
    rows = list(load_from_disk(str(tmp_path / "work" / "hf")))
    assert len(rows) == 4  # the empty answer is not training data
    assert sft_example(rows[0]["messages"], "prompt_completion")["completion"][0]["content"] == "Knead, rise, bake."
    data = tmp_path / "work" / "data.jsonl"
    data.write_text("".join(data.read_text().splitlines(keepends=True)[:3]))  # killed after three answers
    again = ScriptedEngine(script)
    answer_prompts(make_ctx(tmp_path, again))
    assert sum(len(call) for call in again.calls) == 2 and len(data.read_text().splitlines()) == 5
