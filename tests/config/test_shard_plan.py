"""Planning at scale, offline: `shards` and `executor` are accepted on every generation and labeling stage, change
no key, are checked at plan time, and a dry run of hh_mistral prints its shard plan with no cluster present."""
from __future__ import annotations

import json

import pytest

from cai import graph, runner
from cai.config import compose_run
from cai.errors import CaiError

SHARDED = ("sl_data", "helpful", "pairs", "prefs", "eval")


def test_shards_and_executor_change_no_key(cai_home):
    base = {n.name: n.key for n in graph.plan(compose_run(["recipe=tiny"]))}
    overrides = [f"pipeline.{n}.{k}={v}" for n in SHARDED for k, v in (("shards", 5), ("executor", "ray"))]
    overrides += ["pipeline.sft.machines=2", "pipeline.sft.launcher=accelerate", "executors.default=slurm"]
    assert {n.name: n.key for n in graph.plan(compose_run(["recipe=tiny", *overrides]))} == base


@pytest.mark.parametrize("override, message", [
    ("pipeline.sl_data.shards=0", "pipeline.sl_data.shards: must be >= 1, got 0"),
    ("pipeline.pairs.executor=k8s", "pipeline.pairs.executor: executor 'k8s' unknown; available: inprocess, local, "
                                    "ray, slurm"),
])
def test_bad_shard_settings_fail_at_plan_time(cai_home, override, message):
    with pytest.raises(CaiError, match=message):
        graph.plan(compose_run(["recipe=tiny", override]))


def test_hh_mistral_prints_its_shard_plan_offline(cai_home, tmp_path, capsys):
    cfg = compose_run(["recipe=hh_mistral", "dry_run=true", "pipeline.sl_data.shards=64",
                       "pipeline.sl_data.executor=slurm", "pipeline.sl_data.limit=44800", "pipeline.eval.shards=4",
                       "executors.slurm.partition=gpu", "executors.slurm.time_min=120"])
    assert runner.run(cfg, tmp_path) == []
    shown = capsys.readouterr().out
    rows = {r["node"]: r for r in json.loads((tmp_path / "plan.json").read_text())["shards"]}
    assert rows["sl_data"]["per_shard"] == "700" and rows["sl_data"]["executor"] == "slurm"
    assert rows["sl_data"]["resources"].startswith("submitit slurm array of 64 task(s) on gpu: 1 GPU, 8 CPUs")
    assert rows["eval"]["examples"] == 400 and rows["eval"]["executor"] == "local"
    assert "shards" in shown and "submitit slurm array of 64" in shown.replace("\n", " ")


def test_hh_mistral_on_two_nodes_prints_each_nodes_launch_command(cai_home, tmp_path, caplog, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_NODELIST", raising=False)
    caplog.set_level("INFO", logger="cai")
    runner.run(compose_run(["recipe=hh_mistral", "dry_run=true", "pipeline.sft.machines=2"]), tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("pipeline.sft: launcher")]
    assert "srun --nodes 2 --ntasks-per-node 1 runs on each node:" in lines[0]
    for rank in (0, 1):
        node = next(line for line in lines if f"node {rank}:" in line)
        assert f"--num_machines 2 --num_processes 16 --machine_rank {rank}" in node and "deepspeed_zero3.yaml" in node
