"""One store, many processes: 4 cai processes racing for the same node compute it once; 4 worker processes and 2
Ray actors racing for the shards of one node (each shard claimed by two of them) compute every row once, and the
merge has the bytes of an unsharded run. The store's file locks (fcntl/flock) are what make this hold."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cai.executors.base import job_record
from tests.conftest import ROOT
from tests.integration.test_tiny_pipeline import run_in_process

pytestmark = pytest.mark.cluster
LIMIT = 8


def env(home: Path) -> dict:
    return {**os.environ, "CAI_HOME": str(home), "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}


def test_four_processes_racing_for_one_node_compute_it_once(tmp_path):
    args = [sys.executable, "-m", "cai", "recipe=tiny", "targets=[helpful]", f"pipeline.helpful.limit={LIMIT}"]
    procs = [subprocess.Popen(args, cwd=ROOT, env=env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for _ in range(4)]
    outs = [p.communicate(timeout=400)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    assert sum("helpful: running answer_prompts" in out for out in outs) == 1
    artifacts = list((tmp_path / "store" / "answer_prompts").glob("*/DONE.json"))
    assert len(artifacts) == 1 and not list((tmp_path / "store" / ".partial").iterdir())
    rows = (artifacts[0].parent / "data.jsonl").read_text().splitlines()
    assert len(rows) == LIMIT == len({json.loads(r)["id"] for r in rows})


def shard_jobs(home: Path, shards: int = 4):
    """The shard jobs of the tiny recipe's `helpful` node, as cai.shards builds them, plus its items and workdir."""
    from cai import graph, sources
    from cai.config import compose_run
    from cai.executors.base import ShardJob
    from cai.launch import context_record
    from cai.runner import stage_inputs
    from cai.shards import split
    from cai.stage_api import StageContext
    from cai.stages.answer_prompts import answer
    from cai.store import Store

    cfg = compose_run(["recipe=tiny", "targets=[helpful]", f"pipeline.helpful.limit={LIMIT}", f"home={home}"])
    node = graph.plan(cfg)[-1]
    workdir = Store(home).partial(node.key)
    workdir.mkdir(parents=True)
    ctx = StageContext(node.name, node.cfg, stage_inputs(node, cfg, {}), workdir, home, cfg.seed, node.context)
    items, _ = sources.load_prompts(node.cfg.inputs.prompts, LIMIT, False, cfg.seed, node.cfg.max_prompt_chars)
    jobs = [ShardJob(context_record(ctx), "generator", answer, part, i, shards, "data.jsonl", "prompts", node.key)
            for i, part in enumerate(split(items, shards))]
    return jobs, items, workdir


def check_once_and_merge(results: list, jobs: list, items: list, workdir: Path, unsharded: bytes) -> None:
    """Every shard's rows computed once in all (whoever got its lock first), its file complete, the merge exact."""
    from cai.shards import merge

    assert all("error" not in r for r in results), results
    for job in jobs:
        assert sum(r["computed"] for r in results if r["shard"] == job.shard) == len(job.items), job.label
        ids = [json.loads(line)["id"] for line in (job.folder / "data.jsonl").read_text().splitlines()]
        assert ids == [it["id"] for it in job.items], job.label  # complete, in order, nothing doubled
    merge(workdir, "data.jsonl", items, len(jobs), "pipeline.helpful")
    assert (workdir / "data.jsonl").read_bytes() == unsharded


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory) -> bytes:
    home = tmp_path_factory.mktemp("unsharded")
    plan = run_in_process("recipe=tiny", "targets=[helpful]", f"pipeline.helpful.limit={LIMIT}", home=home,
                          run_dir=home / "run")
    return (Path(plan["helpful"]["path"]) / "data.jsonl").read_bytes()


def test_four_workers_racing_for_the_shards_of_one_node_write_each_row_once(tmp_path, unsharded):
    jobs, items, workdir = shard_jobs(tmp_path)
    procs = []
    for p in range(4):  # worker p claims shards p and p+1: every shard is raced by two processes
        spec = tmp_path / f"w{p}.json"
        spec.write_text(json.dumps([job_record(jobs[p]), job_record(jobs[(p + 1) % 4])], default=str))
        procs.append(subprocess.Popen([sys.executable, "-m", "cai.executors.worker", str(spec), str(tmp_path / f"r{p}")],
                                      cwd=ROOT, env=env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outs = [p.communicate(timeout=400)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    results = [json.loads(line) for p in range(4) for line in (tmp_path / f"r{p}").read_text().splitlines()]
    assert len(results) == 8
    check_once_and_merge(results, jobs, items, workdir, unsharded)


def test_two_ray_actors_racing_for_every_shard_write_each_row_once(tmp_path, unsharded):
    import ray

    from cai.executors.ray_actors import ShardActor

    jobs, items, workdir = shard_jobs(tmp_path)
    ray.init(address="local", num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        actors = [ray.remote(num_cpus=1)(ShardActor).remote() for _ in range(2)]
        refs = [actors[0].run.remote(job) for job in jobs] + [actors[1].run.remote(job) for job in reversed(jobs)]
        results = ray.get(refs)
    finally:
        ray.shutdown()
    check_once_and_merge(results, jobs, items, workdir, unsharded)
