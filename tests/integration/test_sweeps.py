"""Hydra sweeps on cluster launchers (the plugins hydra-submitit-launcher and hydra-ray-launcher): each job runs
through submitit's local executor or as a Ray task, and jobs that reach the same node compute it once."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.cluster
SL = ["recipe=tiny", "targets=[sl_data]", "pipeline.sl_data.limit=2"]


def job_plans(home: Path) -> list:
    plans = sorted((home / "runs" / "multirun").glob("*/*/plan.json"))
    return [{n["node"]: n for n in json.loads(p.read_text())["nodes"]} for p in plans]


def test_a_seed_sweep_runs_each_job_through_submitit(tmp_path):
    proc = run_cli("-m", *SL, "seed=1,2", "hydra/launcher=submitit_local", home=tmp_path, check=True)
    assert "Submitit 'local' sweep output dir" in proc.stdout
    results = list((tmp_path / "runs" / "multirun").glob("*/.submitit/*/*_result.pkl"))
    plans = job_plans(tmp_path)
    assert len(results) == 2 and len(plans) == 2 and plans[0]["sl_data"]["key"] != plans[1]["sl_data"]["key"]
    assert len(list((tmp_path / "store" / "critique_revision").glob("*/DONE.json"))) == 2


def test_concurrent_submitit_jobs_compute_a_shared_node_once(tmp_path):
    """Both jobs start at once; `pairs` does not read the principles, so they race for it: one computes it, the
    other waits on the store lock and reuses it."""
    run_cli("-m", "recipe=tiny", "targets=[sl_data,pairs]", "pipeline.sl_data.limit=2", "pipeline.pairs.limit=2",
            "constitution.select=[toxic],[toxic,illegal]", "hydra/launcher=submitit_local", home=tmp_path, check=True)
    logs = [p.read_text() for p in (tmp_path / "runs" / "multirun").glob("*/*/cai.log")]
    assert len(logs) == 2
    assert sum("pairs: running sample_pairs" in log for log in logs) == 1
    assert len(list((tmp_path / "store" / "sample_pairs").glob("*/DONE.json"))) == 1
    assert len(list((tmp_path / "store" / "critique_revision").glob("*/DONE.json"))) == 2
    assert not list((tmp_path / "store" / ".partial").iterdir())


def test_a_seed_sweep_runs_each_job_as_a_ray_task(tmp_path):
    proc = run_cli("-m", *SL, "seed=1,2", "hydra/launcher=ray", "+hydra.launcher.ray.init.address=local",
                   "+hydra.launcher.ray.init.num_cpus=2",
                   "+hydra.launcher.ray.init._node_ip_address=127.0.0.1", home=tmp_path, check=True)
    assert "_run_job pid=" in proc.stdout + proc.stderr  # the jobs' output comes back from Ray workers
    plans = job_plans(tmp_path)
    assert len(plans) == 2 and plans[0]["sl_data"]["key"] != plans[1]["sl_data"]["key"]
