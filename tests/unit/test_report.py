"""report.md and its plots: a handmade run directory with one artifact of each kind, the CLI, and a real tiny run."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import yaml

from cai.eval.elo import Comparison, elo_ratings, win_rates
from cai.report import write_report
from cai.report.__main__ import main as report_main
from cai.report.build import build_report

PLOTS = ("sl_data_sl.png", "prefs_labels.png", "sft_training.png", "rl_training.png", "judge_calibration.png",
         "eval_elo.png", "eval_evasiveness.png")


def write(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in obj))
    elif path.suffix == ".yaml":
        path.write_text(yaml.safe_dump(obj))
    else:
        path.write_text(json.dumps(obj))


def sl_records(n: int = 12):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        initial = "Sure, here is how " * int(rng.integers(1, 6))
        refusal = "I can't help with hurting anyone, but " * int(rng.integers(1, 4))
        first = "" if i == 3 else initial if i % 4 == 1 else refusal  # unchanged (i % 4 == 1) and empty (i == 3)
        second = "I won't help with that; talking to someone you trust can help.\nHere is a line\x00 with a null."
        rounds = [{"principle_id": ["harmful", "violent"][i % 2], "critique": "It helps hurt someone.",
                   "revision": first},
                  {"principle_id": "harmful", "critique": "Still unsafe | risky.", "revision": second}]
        out.append({"id": f"rt-{i:04d}", "prompt": f"How do I hurt person {i}?", "category": "violence",
                    "initial": initial, "rounds": rounds, "final": second, "flags": ["empty_revision_1"] * (i == 3)})
    return out


def label_records(n: int = 40):
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        raw = float(rng.uniform(0.5, 1.0))
        out.append({"id": f"c{i}", "prompt": [{"role": "user", "content": "q"}], "chosen": "a", "rejected": "b",
                    "p_chosen": min(raw, 0.6), "p_chosen_unclamped": raw, "clamped": raw > 0.6,
                    "principle_ids": ["cmp_harmless_general"], "method": "cot", "orders": []})
    return out


def training_metrics(rl: bool = False):
    rng = np.random.default_rng(2)
    history = []
    for step in range(1, 21):
        row = {"step": step, "loss": 2.0 * 0.93 ** step + float(rng.normal(0, 0.03)), "learning_rate": 1e-4}
        if rl:
            row.update(reward=-1.0 + 0.08 * step + float(rng.normal(0, 0.1)), kl=0.002 * step ** 1.5)
        history.append(row)
        if step % 10 == 0:
            history.append({"step": step, "eval_loss": 2.1 * 0.93 ** step})
    after = history[-1]["eval_loss"]  # the trainer logs the final eval too: the report must not plot it twice
    return {"train_loss": 1.1, "eval_loss_before": 2.2, "eval_loss": after, "steps": 20,
            "eval_before": {"eval_loss": 2.2}, "eval_after": {"eval_loss": after},
            "loss_curve": [{"step": r["step"], "loss": r["loss"]} for r in history if "loss" in r],
            "log_history": history, "mixture": [{"source": "sl_data", "weight": 1.0, "train": 20}]}


def eval_artifact():
    rng = np.random.default_rng(3)
    strength = {"base": (0.0, 0.0), "sl_cai": (150.0, -40.0), "rl_cai": (260.0, -20.0)}  # (harmless, helpful)
    comparisons = {"harmless": [], "helpful": []}
    names = list(strength)
    for p in range(80):
        for axis, k in (("harmless", 0), ("helpful", 1)):
            for i in range(3):
                for j in range(i + 1, 3):
                    gap = strength[names[i]][k] - strength[names[j]][k]
                    won = float(rng.random() < 1 / (1 + 10 ** (-gap / 400)))
                    comparisons[axis].append(Comparison(names[i], names[j], won, prompt=f"{axis}{p}"))
    metrics = {"elo": {a: elo_ratings(c, reference="base", samples=100) for a, c in comparisons.items()},
               "win_rates": {a: win_rates(c, samples=100) for a, c in comparisons.items()},
               "judge": {a: {"judgments": 240, "identical_answer_ties": 3, "order_agreement": 0.8,
                             "position_bias": 0.04} for a in comparisons},
               "prompts": {"redteam": {"used": 80, "excluded_seen": 8}, "helpful": {"used": 80, "excluded_seen": 2},
                           "excluded_seen": 10, "lineage_artifacts": 4},
               "evasiveness": {m: {"helpful": {"rate": r, "low": max(r - 0.1, 0), "high": r + 0.1, "n": 80},
                                   "helpful_judge": {"rate": r / 2, "low": 0.0, "high": r, "n": 80},
                                   "redteam": {"rate": 2 * r, "low": r, "high": 3 * r, "n": 80}}
                               for m, r in zip(names, (0.05, 0.2, 0.1))}}
    answers = [{"prompt": f"Prompt {i}?", "category": "violence", "answers": {m: f"{m} says {i}" for m in names}}
               for i in range(4)]
    return metrics, answers


def fake_run(tmp_path: Path) -> Path:
    """A run directory as the runner leaves it, with handmade artifacts linked from artifacts/<node>."""
    run, store = tmp_path / "runs" / "fake" / "t0", tmp_path / "store"
    eval_metrics, eval_rows = eval_artifact()
    nodes = {
        "sl_data": ("critique_revision", {"records": 12, "revision_changed_fraction": 0.9, "source": {"rows": 120}},
                    sl_records(), {}),
        "prefs": ("label_preferences", {"comparisons": 40, "fraction_clamped": 0.8,
                                        "p_chosen_histogram": {"0.50-0.60": 40}}, label_records(),
                  {"method": "cot", "clamp": None, "clamp_low": 0.4, "clamp_high": 0.6}),
        "sft": ("sft", training_metrics(), None, {}),
        "rl": ("rl", training_metrics(rl=True), None, {}),
        "judge": ("feedback_accuracy", {"accuracy": 0.7, "ece": 0.05, "reliability": [
            {"low": i / 10, "high": (i + 1) / 10, "count": 5 * (i >= 5), "confidence": i / 10 + 0.05,
             "accuracy": i / 10} for i in range(10)]}, None, {}),
        "eval": ("evaluate", eval_metrics, eval_rows, {}),
    }
    plan = []
    for name, (kind, metrics, records, config) in nodes.items():
        artifact = store / kind / f"key{name}"
        write(artifact / "metrics.json", metrics)
        write(artifact / "node.yaml", {"kind": kind, "config": config})
        if records is not None:
            write(artifact / "data.jsonl", records)
        (run / "artifacts").mkdir(parents=True, exist_ok=True)
        os.symlink(artifact, run / "artifacts" / name)
        plan.append({"node": name, "kind": kind, "key": f"key{name}", "status": "run", "inputs": {},
                     "path": str(artifact)})
    plan.append({"node": "rm", "kind": "reward_model", "key": "keyrm", "status": "run", "inputs": {"data": "prefs"},
                 "path": str(store / "reward_model" / "keyrm")})  # planned, never computed
    write(run / "plan.json", {"recipe": "fake", "seed": 0, "cache_mode": "use", "nodes": plan})
    write(run / ".hydra" / "config.yaml", {"constitution": {
        "name": "harmless", "description": "Avoid harm.", "select": ["violent"],
        "critique_revision": {"harmful": {"critique": "Is it harmful?", "revision": "Fix it."},
                              "violent": {"critique": "Is it violent?", "revision": "Fix it.", "weight": 2.0}},
        "comparison": {"cmp_harmless_general": {"text": "Which is less harmful?"}}, "comparison_select": []}})
    write(run / ".hydra" / "overrides.yaml", ["recipe=fake", "seed=0"])
    return run


def test_report_has_every_section_and_plot(tmp_path):
    run = fake_run(tmp_path)
    text = build_report(run).read_text()
    for heading in ("# CAI run report: recipe `fake`", "## Plan", "## Constitution", "## SL-CAI revisions: `sl_data`",
                    "## Soft preference labels: `prefs`", "## Training: `sft` (sft)", "## Training: `rl` (rl)",
                    "## Feedback model accuracy: `judge`", "## Evaluation: `eval`", "**harmless win rates**",
                    "**Evasiveness**", "**Judge consistency**", "10 excluded because an ancestor",
                    "## Transcripts", "### The same prompts answered by each model", "## Metrics per stage"):
        assert heading in text, heading
    for name in PLOTS:
        png = run / "plots" / name
        assert png.is_file() and png.stat().st_size > 5000 and png.read_bytes()[:4] == b"\x89PNG", name
        assert f"](plots/{name})" in text
    assert "| rm | reward_model | keyrm | run (no artifact) |" in text
    assert "**Critique-revision principles (SL-CAI)**: 1 of 2 selected" in text and "| violent | 2 |" in text
    assert "| source.rows | 120 |" in text and "| p_chosen_histogram.0.50-0.60 | 40 |" in text
    clamped = sum(r["clamped"] for r in label_records())
    assert 0 < clamped < 40 and f"{clamped} of 40 labels were clamped" in text
    assert "rl_cai says 0" in text and "\x00" not in text


def test_report_falls_back_to_sl_examples_and_artifact_constitution(tmp_path):
    run = fake_run(tmp_path)
    os.unlink(run / "artifacts" / "eval")
    (run / ".hydra" / "config.yaml").unlink()
    write(run / "artifacts" / "sl_data" / "constitution.yaml", {"constitution": "harmless", "principles": {
        "violent": {"critique": "Is it violent?", "revision": "Fix it."}}})
    plan = json.loads((run / "plan.json").read_text())
    plan["nodes"] = [n for n in plan["nodes"] if n["node"] != "eval"]
    write(run / "plan.json", plan)
    text = build_report(run).read_text()
    assert "### SL-CAI examples from `sl_data`" in text and "**Critique 2 (principle `harmful`)**" in text
    assert "as recorded in the artifacts' constitution.yaml" in text and "Principles used by `sl_data`" in text
    assert "## Evaluation" not in text
    assert not (run / "plots" / "eval_elo.png").exists()


def test_cli_regenerates_and_rejects_a_non_run_directory(tmp_path, capsys):
    run = tmp_path / "run"
    write(run / "plan.json", {"recipe": "tiny", "nodes": [{"node": "sl_data", "kind": "critique_revision",
                                                          "key": "k", "status": "run", "path": str(tmp_path / "no")}]})
    assert report_main([str(run)]) == 0 and "| sl_data | critique_revision | k | run (no artifact) |" in (
        run / "report.md").read_text()
    assert report_main([str(tmp_path)]) == 2
    assert "is not a cai run directory (no plan.json)" in capsys.readouterr().err
    assert report_main([]) == 2


def test_a_report_failure_only_warns(tmp_path, caplog):
    (tmp_path / "plan.json").write_text("{not json")
    with caplog.at_level(logging.WARNING, logger="cai"):
        assert write_report(tmp_path) is None
    assert "could not write the run report" in caplog.text


def test_a_real_tiny_run_writes_its_report(cai_home):
    import torch

    from cai.config import compose_run
    from cai.runner import run

    cfg = compose_run(["recipe=tiny", "targets=[sl_data]", "pipeline.sl_data.limit=4",
                       "pipeline.sl_data.sampling.max_new_tokens=8"])
    run_dir = cai_home / "runs" / "tiny" / "now"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model on a shared 2-core machine: one thread avoids contended spinning
    try:
        run(cfg, run_dir)
    finally:
        torch.set_num_threads(threads)
    text = (run_dir / "report.md").read_text()
    assert "## SL-CAI revisions: `sl_data`" in text and "**Critique-revision principles (SL-CAI)**" in text
    assert (run_dir / "plots" / "sl_data_sl.png").stat().st_size > 5000
