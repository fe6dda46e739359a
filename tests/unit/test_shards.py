"""Sharding on the scripted engine, shards one after another in this process (executor inprocess): the merge has
the unsharded bytes for any K, a killed shard resumes alone, and a rerun with another K loses and doubles nothing."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from cai.engines.scripted import ScriptedEngine
from cai.errors import CaiError
from cai.executors.base import shard_folder
from cai.shards import split
from cai.stage_api import Input, StageContext
from cai.stages.answer_prompts import AnswerPromptsConfig, answer_prompts


def make_ctx(tmp_path: Path, engine, shards: int = 1, executor: str = "inprocess", work: str = "work") -> StageContext:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"How do I bake bread {i}?"}) + "\n" for i in range(7)))
    cfg = OmegaConf.structured(AnswerPromptsConfig)
    cfg.inputs.prompts, cfg.chunk_size, cfg.shards, cfg.executor = f"file://{prompts}", 2, shards, executor
    (tmp_path / work).mkdir(exist_ok=True)
    inputs = {"generator": Input("model", "generator", spec=OmegaConf.create({"engine": "scripted"}))}
    ctx = StageContext("helpful", cfg, inputs, tmp_path / work, tmp_path, 0, {}, lambda spec, home: engine)
    ctx.dispatch = {"key": f"k{work}"}
    return ctx


def seeded(chat, seed):
    return f"{chat[-1]['content']} -> {seed % 1000}"


def data(tmp_path: Path, work: str = "work") -> bytes:
    return (tmp_path / work / "data.jsonl").read_bytes()


def test_split_is_interleaved_and_covers_every_item_once():
    items = [{"id": str(i)} for i in range(7)]
    parts = split(items, 3)
    assert [[it["id"] for it in p] for p in parts] == [["0", "3", "6"], ["1", "4"], ["2", "5"]]


@pytest.mark.parametrize("shards", [2, 3, 7])
def test_the_merge_has_the_bytes_of_one_shard(tmp_path, shards):
    answer_prompts(make_ctx(tmp_path, ScriptedEngine(seeded), work="one"))
    metrics = answer_prompts(make_ctx(tmp_path, ScriptedEngine(seeded), shards=shards, work="many"))
    assert data(tmp_path, "many") == data(tmp_path, "one") and data(tmp_path, "one").count(b"\n") == 7
    assert metrics["shards"] == shards and len(metrics["shard_runs"]) == shards
    assert not (tmp_path / "many" / "shards").exists()  # merged, then the shard files go


def test_a_killed_shard_reruns_alone_and_the_merge_is_unchanged(tmp_path):
    answer_prompts(make_ctx(tmp_path, ScriptedEngine(seeded), work="one"))
    ctx = make_ctx(tmp_path, ScriptedEngine(seeded), shards=3)
    for i in range(3):  # as a kill leaves it: shards 0 and 2 finished, shard 1 one chunk in, with a torn line
        folder = shard_folder(ctx.workdir, i, 3)
        folder.mkdir(parents=True)
        rows = [json.loads(line) for line in data(tmp_path, "one").decode().splitlines()][i::3]
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in (rows if i != 1 else rows[:1]))
        (folder / "data.jsonl").write_text(text + ('{"id": "tor' if i == 1 else ""))
    engine = ScriptedEngine(seeded)
    answer_prompts(make_ctx(tmp_path, engine, shards=3))
    assert sum(len(call) for call in engine.calls) == 1  # only shard 1's missing prompt was generated
    assert data(tmp_path) == data(tmp_path, "one")


def test_a_rerun_with_another_split_keeps_every_finished_row_once(tmp_path):
    answer_prompts(make_ctx(tmp_path, ScriptedEngine(seeded), work="one"))
    ctx = make_ctx(tmp_path, ScriptedEngine(seeded), shards=2)
    rows = data(tmp_path, "one").decode().splitlines(keepends=True)
    folder = shard_folder(ctx.workdir, 0, 2)
    folder.mkdir(parents=True)
    (folder / "data.jsonl").write_text("".join(rows[0::2][:2]))  # two rows of shard 0 of 2, then a kill
    engine = ScriptedEngine(seeded)
    answer_prompts(make_ctx(tmp_path, engine, shards=3))  # rerun with 3 shards
    assert sum(len(call) for call in engine.calls) == 5 and data(tmp_path) == data(tmp_path, "one")
    engine = ScriptedEngine(seeded)
    (folder).mkdir(parents=True)
    (folder / "data.jsonl").write_text("".join(rows[:1]))  # a stale shard file, then an unsharded rerun
    (tmp_path / "work" / "data.jsonl").write_text("".join(rows[3:]))
    answer_prompts(make_ctx(tmp_path, engine, shards=1))
    assert sum(len(call) for call in engine.calls) == 2 and data(tmp_path) == data(tmp_path, "one")


def test_an_unknown_executor_is_named(tmp_path):
    with pytest.raises(CaiError, match="executor 'kubernetes' unknown; available: inprocess, local, ray, slurm"):
        answer_prompts(make_ctx(tmp_path, ScriptedEngine(seeded), shards=2, executor="kubernetes"))
