"""recipe=tiny end to end through the CLI: cache hits, reruns of changed nodes only, sweeps, resume after a kill."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT, run_cli

SL = ["recipe=tiny", "targets=[sl_data]"]


def plan_of(proc: subprocess.CompletedProcess) -> dict:
    run_dir = Path(proc.stdout.split("run directory:")[-1].split()[0])
    return {n["node"]: n for n in json.loads((run_dir / "plan.json").read_text())["nodes"]}


def records(artifact: Path) -> list:
    return [json.loads(line) for line in (artifact / "data.jsonl").read_text().splitlines()]


def test_run_then_rerun_is_all_cache_hits(shared_home):
    first = run_cli(*SL, home=shared_home, check=True)
    node = plan_of(first)["sl_data"]
    artifact = Path(node["path"])
    assert len(records(artifact)) == 8 and (artifact / "DONE.json").is_file() and (artifact / "hf").is_dir()
    for name in ("node.yaml", "lineage.json", "metrics.json", "samples.md", "constitution.yaml"):
        assert (artifact / name).is_file(), name
    again = run_cli(*SL, home=shared_home, check=True)
    assert plan_of(again)["sl_data"]["status"] == "cached"
    run_dir = Path(again.stdout.split("run directory:")[-1].split()[0])
    assert (run_dir / "artifacts" / "sl_data").resolve() == artifact and (run_dir / ".hydra").is_dir()


def run_in_process(*overrides: str, home: Path, run_dir: Path) -> dict:
    """The runner as the CLI calls it, without a new interpreter per run (the CLI itself is tested above)."""
    from cai.config import compose_run
    from cai.runner import run

    run(compose_run([*overrides, f"home={home}"]), run_dir)
    return {n["node"]: n for n in json.loads((run_dir / "plan.json").read_text())["nodes"]}


def test_changing_a_field_reruns_the_node_and_refresh_recomputes(shared_home, tmp_path):
    two = [*SL, "pipeline.sl_data.limit=2"]  # two prompts: the test is about keys, not generation
    home = shared_home  # its tiny model is built once per session
    run_in_process(*two, home=home, run_dir=tmp_path / "a")
    assert run_in_process(*two, home=home, run_dir=tmp_path / "b")["sl_data"]["status"] == "cached"
    changed = run_in_process(*two, "pipeline.sl_data.sampling.temperature=0.5", home=home, run_dir=tmp_path / "c")
    assert changed["sl_data"]["status"] == "run"
    refreshed = run_in_process(*two, "cache.mode=refresh", home=home, run_dir=tmp_path / "d")
    assert refreshed["sl_data"]["status"] == "run"


def test_multirun_gives_separate_jobs_and_keys(shared_home):
    proc = run_cli("-m", *SL, "seed=1,2", "pipeline.sl_data.limit=2", home=shared_home, check=True)
    run_dirs = sorted({Path(line.split("run directory:")[-1].strip()) for line in proc.stdout.splitlines()
                       if "run directory:" in line})
    assert len(run_dirs) == 2
    keys = {json.loads((d / "plan.json").read_text())["nodes"][0]["key"] for d in run_dirs}
    assert len(keys) == 2
    root = run_dirs[0].parent  # the Hydra callback leaves the comparison report at the multirun root
    table = (root / "report.md").read_text().split("## One row per job")[1].split("\n\n")[1].splitlines()[2:]
    assert [row.split(" | ")[:2] for row in table] == [["| 0_tiny", "seed=1"], ["| 1_tiny", "seed=2"]]
    assert f"sweep report: {root / 'report.md'}" in proc.stdout


def test_sigkill_during_generation_then_rerun_resumes(cai_home):
    args = [*SL, "pipeline.sl_data.limit=12", "pipeline.sl_data.chunk_size=2",
            "pipeline.sl_data.sampling.max_new_tokens=48"]
    env = {**os.environ, "CAI_HOME": str(cai_home)}
    proc = subprocess.Popen([sys.executable, "-m", "cai", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    partial = cai_home / "store" / ".partial"
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        written = [p for p in partial.glob("*/data.jsonl") if p.read_text().count("\n") >= 2]
        if written:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "generation finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = written[0].read_text().count("\n")
    rerun = run_cli(*args, home=cai_home, check=True)
    assert "resuming" in rerun.stderr + rerun.stdout
    resumed = Path(plan_of(rerun)["sl_data"]["path"]) / "data.jsonl"
    rows = records(resumed.parent)
    assert len(rows) == 12 and len({r["id"] for r in rows}) == 12 and done_before < 12
    # per-example seeds: the killed-and-resumed artifact has the bytes of an uninterrupted run
    whole = run_in_process(*args, home=cai_home.parent / "uninterrupted", run_dir=cai_home.parent / "whole")
    assert (Path(whole["sl_data"]["path"]) / "data.jsonl").read_bytes() == resumed.read_bytes()


def test_batch_size_and_chunk_size_change_neither_key_nor_bytes(shared_home, tmp_path):
    """Sampling is seeded per example and turn: how rows are batched or chunked is not in the key, nor in the bytes."""
    outputs = []
    for n, settings in enumerate((["models.generator.max_batch_size=64"], ["models.generator.max_batch_size=2"],
                                  ["pipeline.sl_data.chunk_size=3"], ["models.generator.max_batch_tokens=600"])):
        plan = run_in_process(*SL, *settings, home=tmp_path / f"home{n}", run_dir=tmp_path / f"run{n}")
        outputs.append((plan["sl_data"]["key"], (Path(plan["sl_data"]["path"]) / "data.jsonl").read_bytes()))
    assert len(set(outputs)) == 1 and outputs[0][1].count(b"\n") == 8


def test_a_principle_sweep_shares_every_node_that_does_not_read_the_principles(tmp_path):
    proc = run_cli("-m", "recipe=tiny", "targets=[sl_data,pairs]", "pipeline.sl_data.limit=2", "pipeline.pairs.limit=2",
                   "constitution.select=[toxic],[toxic,illegal]", home=tmp_path, check=True)
    plans = sorted((tmp_path / "runs" / "multirun").glob("*/*/plan.json"))
    assert len(plans) == 2, proc.stdout
    keys = [{n["node"]: n["key"] for n in json.loads(p.read_text())["nodes"]} for p in plans]
    assert keys[0]["sl_data"] != keys[1]["sl_data"] and keys[0]["pairs"] == keys[1]["pairs"]
    store = tmp_path / "store"
    assert len(list((store / "critique_revision").glob("*/DONE.json"))) == 2  # one per principle set
    assert len(list((store / "sample_pairs").glob("*/DONE.json"))) == 1  # computed once, a cache hit for job 2
