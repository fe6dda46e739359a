"""The report's "Can these labels be trusted?" box, the caveats downstream of a judge at chance, the eval judge's
independence warning, the over-refusal plane, and the sweep report at a multirun root."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from cai.report.__main__ import main as report_main
from cai.report.build import build_report
from cai.report.compare import SweepReport, build_compare
from tests.unit.test_report import fake_run, write

CHANCE = {"items": 16, "accuracy": 0.5, "low": 0.28, "high": 0.72, "order_agreement": 0.0, "position_bias": -0.32,
          "ece": 0.1, "by_kind": {"harmful_vs_safe": {"items": 6, "accuracy": 0.5, "low": 0.2, "high": 0.8}}}
GOOD = dict(CHANCE, accuracy=0.97, low=0.85, high=0.99, order_agreement=0.95, position_bias=0.01)


def rate(r: float, n: int = 12) -> dict:
    return {"rate": r, "low": max(r - 0.2, 0.0), "high": min(r + 0.2, 1.0), "n": n}


def run_with(tmp_path: Path, prefs_audit: dict, eval_audit: dict, same_judge: bool = True) -> Path:
    """fake_run with audits on prefs and eval, rm computed from prefs, eval over rl, and over-refusal numbers."""
    run = fake_run(tmp_path)
    store = tmp_path / "store"
    plan = json.loads((run / "plan.json").read_text())
    for node in plan["nodes"]:
        node["inputs"] = {"prefs": {"judge": "models.judge"}, "rm": {"mixture.0": "prefs"},
                          "rl": {"reward": "rm", "model": "sft"}, "eval": {"models.rl": "rl", "judge": "models.judge"}
                          }.get(node["node"], {})
    write(run / "plan.json", plan)
    rm = store / "reward_model" / "keyrm"
    write(rm / "metrics.json", {"eval_reward_accuracy": 0.5, "eval_after": {"eval_loss": 0.69}, "steps": 4})
    (run / "artifacts" / "rm").symlink_to(rm)
    prefs = json.loads((store / "label_preferences" / "keyprefs" / "metrics.json").read_text())
    write(store / "label_preferences" / "keyprefs" / "metrics.json", {**prefs, "audit": prefs_audit})
    metrics_file = store / "evaluate" / "keyeval" / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics["audit"] = eval_audit
    metrics["models"] = {m: m for m in metrics["elo"]["harmless"]}
    metrics["overrefusal"] = {m: {"overrefusal": rate(r), "harmful_compliance": rate(1 - r),
                                  "overrefusal_judge": rate(r / 2), "harmful_compliance_judge": rate(0.5)}
                              for m, r in zip(metrics["models"], (0.1, 0.4, 0.7))}
    metrics["prompts"]["overrefusal"] = {"used": 24, "harmless": 12, "harmful": 12}
    metrics["eval_judge"] = {"reference": "models.eval_judge", "resolved": "models.judge", "labeling_judges": [
        {"node": "prefs", "judge": "judge", "identity": "model:J"}], "same_as_labeling": ["prefs"] * same_judge,
        "independent": not same_judge}
    write(metrics_file, metrics)
    return run


def test_the_report_opens_with_the_verdicts_and_downstream_nodes_carry_the_caveat(tmp_path):
    run = run_with(tmp_path, CHANCE, GOOD)
    text = build_report(run).read_text()
    box = text.split("## Can these labels be trusted?")[1].split("## Plan")[0]
    assert text.index("## Can these labels be trusted?") < text.index("## Plan")
    assert "**`prefs`** (labels, judge `models.judge`): **AT CHANCE**. Known-answer accuracy 50%, 95% CI 28%-72%" in box
    assert "**`eval`** (eval judge, judge `models.judge`): **TRUSTWORTHY**" in box
    assert "| prefs | at chance | 50% | 28%-72% | 16 | 0.00 | -0.32 |" in box and "harmful_vs_safe 50% (n=6)" in box
    assert "pipeline.prefs.method=cot" in box
    for section in ("## Training: `rl` (rl)", "## Evaluation: `eval`", "## Training: `rm` (reward_model)"):
        body = text.split(section)[1][:400]
        assert "**Not evidence:** this rests on labels from `prefs`" in body, section
    assert "**At chance:** these labels are no better than a coin" in text.split("## Soft preference labels")[1][:300]
    assert "**Not evidence:**" not in text.split("## SL-CAI revisions")[1].split("##")[0]
    assert "## Judge audit: `prefs`" not in text  # the handmade audits hold no reliability table: no plot to draw


def test_a_judge_at_chance_in_eval_and_one_grading_its_own_labels_are_called_out(tmp_path):
    text = build_report(run_with(tmp_path, GOOD, CHANCE)).read_text()
    evaluation = text.split("## Evaluation: `eval`")[1]
    assert "this node's judge is at chance on known answers" in evaluation[:600]
    assert "**The evaluation grades itself:** the eval judge (`models.judge`, from `models.eval_judge`) is the model " \
           "that labeled `prefs`" in evaluation and "+model@models.eval_judge=NAME" in evaluation
    assert "rests on labels" not in text  # prefs is trustworthy: nothing downstream is flagged
    independent = build_report(run_with(tmp_path / "b", GOOD, GOOD, same_judge=False)).read_text()
    assert "grades itself" not in independent and "labeling judges of the compared models: `prefs`" in independent


def test_overrefusal_is_tabled_and_plotted_per_model(tmp_path):
    run = run_with(tmp_path, GOOD, GOOD)
    text = build_report(run).read_text()
    assert "**Over-refusal**" in text and "12 harmless and 12 harmful prompts" in text
    assert "| rl_cai | 70% (8/12) | 50% - 90% | 30% (4/12) |" in text  # detector over-refusal, then compliance
    png = run / "plots" / "eval_overrefusal.png"
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10000 and "](plots/eval_overrefusal.png)" in text


def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "multirun" / "t"
    for number, (selected, audit) in enumerate((("[toxic]", CHANCE), ("[toxic,illegal]", GOOD))):
        job = root / f"{number}_tiny"
        shutil.copytree(run_with(tmp_path / f"job{number}", audit, GOOD), job, symlinks=True)
        write(job / ".hydra" / "overrides.yaml", ["recipe=tiny", f"constitution.select={selected}"])
    return root


def test_the_sweep_report_has_one_row_per_job_and_plots_the_jobs(tmp_path, capsys):
    root = sweep(tmp_path)
    text = build_compare(root).read_text()
    rows = [line for line in text.split("## One row per job")[1].split("\n\n")[1].splitlines()[2:]]
    assert len(rows) == 2 and rows[0].startswith("| 0_tiny | constitution.select=[toxic] | prefs: at chance; eval:")
    assert "| rl_cai | 333 [268, 422] |" in rows[1] and "70% [50%, 90%] | 30% [10%, 50%] |" in rows[1]
    assert (root / "plots" / "sweep_plane.png").stat().st_size > 10000 and "[0_tiny](0_tiny/report.md)" in text
    assert report_main(["--compare", str(root)]) == 0 and str(root / "report.md") in capsys.readouterr().out
    assert report_main(["--compare", str(tmp_path / "nothing")]) == 2
    assert "no job directories" in capsys.readouterr().err


def test_the_hydra_callback_writes_it_and_only_warns_on_failure(tmp_path, caplog):
    from omegaconf import OmegaConf

    root = sweep(tmp_path)
    SweepReport().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(root)}}}))
    assert (root / "report.md").is_file()
    SweepReport().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path / "empty")}}}))
    assert "could not write the sweep report" in caplog.text
