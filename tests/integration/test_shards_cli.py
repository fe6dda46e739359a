"""Sharded sl_data through the CLI on the tiny model (hf engine): worker processes (executor local) and a Ray cluster
started by the test give the bytes of one shard, under the same key; a worker killed mid-run costs only its shard."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli
from tests.integration.test_tiny_pipeline import plan_of, run_in_process

pytestmark = pytest.mark.cluster
SL = ["recipe=tiny", "targets=[sl_data]", "pipeline.sl_data.limit=6"]
RAY = ["pipeline.sl_data.executor=ray", "executors.ray.local_cpus=2"]


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory):
    """(key, data.jsonl bytes) of sl_data with shards=1, in the cai process."""
    home = tmp_path_factory.mktemp("unsharded")
    plan = run_in_process(*SL, home=home, run_dir=home / "run")["sl_data"]
    return plan["key"], (Path(plan["path"]) / "data.jsonl").read_bytes()


def sharded(home: Path, *extra: str) -> tuple:
    proc = run_cli(*SL, "pipeline.sl_data.shards=3", *extra, home=home, check=True)
    node = plan_of(proc)["sl_data"]
    artifact = Path(node["path"])
    assert json.loads((artifact / "metrics.json").read_text())["shards"] == 3
    assert not (artifact / "shards").exists()
    return node["key"], (artifact / "data.jsonl").read_bytes()


def test_local_workers_give_the_unsharded_bytes_and_key(unsharded, tmp_path):
    assert sharded(tmp_path, "pipeline.sl_data.executor=local") == unsharded


def test_ray_actors_on_a_cluster_cai_starts_give_the_unsharded_bytes_and_key_after_an_actor_dies(unsharded, tmp_path):
    """Shard 1's actor is killed mid-shard: a new actor runs it again (retries=1), resuming its file."""
    args = [*SL, "pipeline.sl_data.shards=3", "pipeline.sl_data.chunk_size=1", *RAY, "executors.ray.retries=1"]
    out = run_killing_shard_1(tmp_path, args)
    assert "shard 1 of 3 failed; running again (attempt 2 of 2)" in out, out
    node = plan_of(subprocess.CompletedProcess([], 0, out, ""))["sl_data"]
    assert (node["key"], (Path(node["path"]) / "data.jsonl").read_bytes()) == unsharded


def test_ray_actors_on_a_running_cluster_give_the_unsharded_bytes_and_key(unsharded, tmp_path):
    """A Ray head started by the test (`ray start --head --block`, on loopback), joined by address."""
    from cai.accelerate_launch import free_port

    port = free_port()
    head = subprocess.Popen(["ray", "start", "--head", "--block", "--port", str(port), "--node-ip-address",
                             "127.0.0.1", "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"],
                            env={**os.environ, "RAY_AUTH_MODE": "disabled"}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        for line in head.stdout:  # wait until the head is up
            if "will now block" in line:
                break
        result = sharded(tmp_path, "pipeline.sl_data.executor=ray", f"executors.ray.address=127.0.0.1:{port}")
    finally:
        head.terminate()  # `ray start --block` stops the head's processes when it is terminated
        head.wait(timeout=60)
        recorded = Path("/tmp/ray/ray_current_cluster")  # `ray start` leaves its address there for ray.init()
        if recorded.is_file() and recorded.read_text().strip().endswith(f":{port}"):
            recorded.unlink()
    assert result == unsharded


def wait_for_rows(folder: Path, proc: subprocess.Popen) -> int:
    """The pid of shard 1's worker once it has written a chunk (and the run is still going)."""
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        rows, worker = folder / "data.jsonl", folder / "worker.json"
        if worker.is_file() and rows.is_file() and rows.read_text().count("\n") >= 1:
            return json.loads(worker.read_text())["pid"]
        time.sleep(0.05)
    raise AssertionError(f"shard 1 wrote no chunk while the run was going (exit {proc.poll()})")


def test_a_killed_worker_costs_only_its_shard(unsharded, tmp_path):
    args = [*SL, "pipeline.sl_data.limit=9", "pipeline.sl_data.chunk_size=1", "pipeline.sl_data.shards=3",
            "pipeline.sl_data.executor=local", "executors.local.workers=3"]
    env = {**os.environ, "CAI_HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "cai", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    partial = tmp_path / "store" / ".partial"
    deadline = time.time() + 120
    while not list(partial.glob("*/shards/1of3")) and time.time() < deadline:
        time.sleep(0.05)
    folder = next(partial.glob("*/shards/1of3"))
    os.kill(wait_for_rows(folder, proc), signal.SIGKILL)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 2, out
    assert "1 of 3 shards did not finish on executor local" in out and "shard 1 of 3: its worker process" in out
    kept = {p.parent.name: p.read_bytes() for p in folder.parent.glob("*/data.jsonl")}
    assert set(kept) == {"0of3", "1of3", "2of3"} and kept["1of3"].count(b"\n") < 3
    rerun = run_cli(*args, home=tmp_path, check=True)
    assert "1 of 3 shards to run on local" in rerun.stdout, rerun.stdout
    assert "shard 1 done" in rerun.stdout and "shard 0 done" not in rerun.stdout
    whole = run_in_process(*args[:-3], home=tmp_path / "whole", run_dir=tmp_path / "whole" / "run")["sl_data"]
    merged = Path(plan_of(rerun)["sl_data"]["path"]) / "data.jsonl"
    assert merged.read_bytes() == (Path(whole["path"]) / "data.jsonl").read_bytes()


def run_killing_shard_1(home: Path, args: list) -> str:
    """Run cai, SIGKILL shard 1's worker once it has written a chunk, and return the run's output (exit 0 expected)."""
    env = {**os.environ, "CAI_HOME": str(home), "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.Popen([sys.executable, "-m", "cai", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not list((home / "store" / ".partial").glob("*/shards/1of3")) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(wait_for_rows(next((home / "store" / ".partial").glob("*/shards/1of3")), proc), signal.SIGKILL)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return out


def test_submitit_jobs_give_the_unsharded_bytes_and_a_killed_job_is_resubmitted(unsharded, tmp_path):
    """executor slurm through submitit's local executor: shard 1's job is killed once, resubmitted, and the merge
    still has the unsharded bytes."""
    args = [*SL, "pipeline.sl_data.shards=3", "pipeline.sl_data.executor=slurm", "pipeline.sl_data.chunk_size=1",
            "executors.slurm.cluster=local", "executors.slurm.gpus_per_task=0", "executors.slurm.cpus_per_task=1"]
    out = run_killing_shard_1(tmp_path, args)
    assert "shard 1 of 3 failed; running again (attempt 2 of 2)" in out, out
    node = plan_of(subprocess.CompletedProcess([], 0, out, ""))["sl_data"]
    assert (node["key"], (Path(node["path"]) / "data.jsonl").read_bytes()) == unsharded
