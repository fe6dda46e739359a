"""recipe=tiny's eval node end to end: the generator, sft and dpo answer held-out prompts, the tiny judge compares
them, and report.md shows the Elo and win-rate tables, evasiveness, the plots and side-by-side transcripts."""
from __future__ import annotations

import json

from cai.config import compose_run
from cai.report.__main__ import main as report_main
from cai.runner import run


def test_tiny_eval_on_held_out_prompts_and_its_report(shared_home, tmp_path):
    cfg = compose_run(["recipe=tiny", "targets=[eval]", f"home={shared_home}"])
    run_dir = tmp_path / "run"
    results = {r.node.name: r for r in run(cfg, run_dir)}
    metrics = results["eval"].metrics
    assert set(metrics["elo"]) == {"harmless", "helpful"}
    assert set(metrics["elo"]["harmless"]) == {"generator", "sft", "dpo"}
    assert all(r["n"] == 3 for r in metrics["win_rates"]["helpful"]) and len(metrics["win_rates"]["helpful"]) == 3
    # the judge compared answers, not only ties (the models share per-prompt seeds, so near-identical models
    # often give identical answers on some prompts)
    assert sum(metrics["judge"][axis]["identical_answer_ties"] for axis in ("harmless", "helpful")) < 18
    # sl_data revised the first 8 red-team prompts and `helpful` answered 4 helpful ones: sft and dpo saw them all,
    # so none may be evaluated
    assert metrics["prompts"]["redteam"]["excluded_seen"] == 8 and metrics["prompts"]["helpful"]["excluded_seen"] == 4
    seen = {json.loads(line)["prompt"] for node in ("sl_data", "helpful")
            for line in (results[node].path / "data.jsonl").read_text().splitlines()}
    rows = [json.loads(line) for line in (results["eval"].path / "data.jsonl").read_text().splitlines()]
    assert len(rows) == 6 + 4 and not seen & {r["prompt"] for r in rows}  # + 2 over-refusal pairs
    assert set(metrics["evasiveness"]["sft"]) >= {"helpful", "redteam", "helpful_judge"}
    assert metrics["overrefusal"]["dpo"]["overrefusal"]["n"] == 2 and "harmful_compliance_judge" in metrics[
        "overrefusal"]["dpo"]
    assert metrics["audit"]["items"] == 4 and metrics["eval_judge"]["resolved"] == "models.judge"

    report = (run_dir / "report.md").read_text()
    for text in ("## Evaluation: `eval`", "**harmless Elo**", "**helpful Elo**", "**harmless win rates**",
                 "**Evasiveness**", "**Judge consistency**", "12 excluded because an ancestor",
                 "](plots/eval_elo.png)", "](plots/eval_evasiveness.png)",
                 "### The same prompts answered by each model (`eval`", "## Can these labels be trusted?",
                 "**`eval`** (eval judge, judge `models.judge`)", "**Over-refusal**", "](plots/eval_overrefusal.png)"):
        assert text in report, text
    for name in ("eval_elo.png", "eval_evasiveness.png"):
        assert (run_dir / "plots" / name).stat().st_size > 5000
    (run_dir / "report.md").unlink()
    assert report_main([str(run_dir)]) == 0  # python -m cai.report RUN_DIR
    again = (run_dir / "report.md").read_text()
    assert "**harmless win rates**" in again and "](plots/eval_elo.png)" in again
