"""report.md and plots/ for a run directory (`$CAI_HOME/runs/<recipe>/<time>/`): what the run changed.

Sections appear when the artifacts behind them do; artifacts are recognized by their files, not their stage kind:

- every node: plan.json row (node, kind, key, status) and metrics.json (scalars; nested dicts flattened to dotted
  keys, lists summarized);
- SL-CAI (critique_revision): data.jsonl rows `{id, prompt, category, initial, rounds: [{principle_id, critique,
  revision, ...}], final, flags}` -> how often revisions changed the answer, lengths, principle usage, examples;
- soft labels (label_preferences): data.jsonl rows `{id, prompt, chosen, rejected, p_chosen, p_chosen_unclamped,
  clamped, principle_ids, method, orders}`, node.yaml `clamp_high` -> p_chosen histogram and the clamped mass;
- training (sft, dpo, reward_model, rl): metrics.json `log_history` (TRL's), else `curve` / `loss_curve`: lists of
  dicts with `step` and `loss` (DPO `rewards/accuracies`, `rewards/margins`; RM `accuracy`, `margin`; RL `reward`,
  `kl`), plus `eval_before` / `eval_after` dicts -> one panel per quantity against step;
- feedback model accuracy (feedback_accuracy): metrics.json `reliability` table -> calibration plot;
- evaluate (cai/report/evaluation.py), the format this module expects:
    metrics.json  {"elo": {"harmless": {MODEL: {"elo": float, "low": float, "high": float}, ...},
                           "helpful":  {MODEL: {...}, ...}},
                   "win_rates": {"harmless": [{"model_a", "model_b", "win_rate", "low", "high", "n"}, ...],
                                 "helpful": [...]},
                   "judge": {AXIS: {order_agreement, position_bias, ...}},             (optional)
                   "evasiveness": {MODEL: {"helpful": {rate, low, high, n}, ...}},      (optional)
                   "prompts": {"excluded_seen": int, SET: {"used": int, ...}}}          (optional)
                  (what `cai.eval.elo.elo_ratings` and `win_rates` return, one entry per axis)
    data.jsonl    {"prompt": str, "category": str, "answers": {MODEL: str, ...}}   (side-by-side answers)
  -> harmlessness vs helpfulness Elo plot, Elo and win-rate tables, evasiveness, the same prompts answered by each
     model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from cai.report import evaluation, plots, sections, trust
from cai.report.load import NodeView, RunView, load_run

REPORT = "report.md"
PLOTS = "plots"


def build_report(run_dir: Path, cfg: Optional[Any] = None) -> Path:
    """Write `run_dir/report.md` and its PNGs under `run_dir/plots/`; returns the report's path."""
    run = load_run(Path(run_dir), cfg)
    plot_dir = run.dir / PLOTS
    for old in plot_dir.glob("*.png"):  # drop plots of nodes this run no longer has
        old.unlink()
    lines = sections.header(run) + trust.box(run) + sections.plan(run) + sections.constitution(run)
    for node in run.nodes:
        lines += node_sections(node, run, plot_dir)
    lines += transcripts(run) + sections.metrics(run)
    out = run.dir / REPORT
    out.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return out


def node_sections(node: NodeView, run: RunView, plot_dir: Path) -> List[str]:
    """The sections this node's artifact supports (none when it was not computed)."""
    if node.path is None:
        return []
    lines: List[str] = []
    if node.is_sl():
        lines += sl_section(node, run, plot_dir)
    if node.is_labels():
        lines += labels_section(node, run, plot_dir)
    if node.steps() or "eval_after" in node.metrics:
        lines += training_section(node, run, plot_dir)
    if isinstance(node.metrics.get("reliability"), list):
        lines += accuracy_section(node, run, plot_dir)
    if isinstance(node.metrics.get("audit"), dict) and isinstance(node.metrics["audit"].get("reliability"), list):
        lines += audit_section(node, run, plot_dir)
    if node.is_eval():
        lines += evaluation.eval_section(node, run, plot_dir)
    return lines


def sl_section(node: NodeView, run: RunView, plot_dir: Path) -> List[str]:
    """SL-CAI statistics (paper sec. 3): revision changes, lengths, principle usage."""
    path = plots.sl_plot(node.records, node.name, plot_dir / f"{node.name}_sl.png")
    head = ("records", "revision_changed_fraction", "flagged_records", "empty_revisions", "mean_initial_chars",
            "mean_final_chars")
    return [f"## SL-CAI revisions: `{node.name}`", ""] + _scalars(node, head) + sections.image(path, run, node.name)


def labels_section(node: NodeView, run: RunView, plot_dir: Path) -> List[str]:
    """Soft-label distribution (paper sec. 4.1): p_chosen histogram and how much mass the CoT clamp moved."""
    clamp = node.config.get("clamp_high")
    path = plots.labels_plot(node.records, node.name, plot_dir / f"{node.name}_labels.png",
                             float(clamp) if isinstance(clamp, (int, float)) else None)
    clamped = sum(1 for r in node.records if r.get("clamped"))
    head = ("comparisons", "method", "mean_confidence", "mean_confidence_unclamped", "order_agreement",
            "position_bias", "fraction_clamped")
    note = [f"{clamped} of {len(node.records)} labels were clamped.", ""] if clamped else []
    return [f"## Soft preference labels: `{node.name}`", ""] + trust.caveat(node, run) + _scalars(node, head) + note + \
        sections.image(path, run, node.name)


def training_section(node: NodeView, run: RunView, plot_dir: Path) -> List[str]:
    """Training curves with held-out points before (step 0) and after training."""
    extra: Dict[str, list] = {}
    for which, step in (("eval_before", 0), ("eval_after", node.metrics.get("steps"))):
        found = node.metrics.get(which)
        if isinstance(found, dict) and isinstance(step, (int, float)):
            for key, value in found.items():
                if isinstance(value, (int, float)):
                    extra.setdefault(key, []).append((step, value))
    path = plots.training_plot(node.steps(), node.name, plot_dir / f"{node.name}_training.png", extra)
    head = ("train_loss", "eval_loss_before", "eval_loss", "eval_reward_accuracy_before", "eval_reward_accuracy",
            "eval_reward_margin", "eval_ece_before", "eval_ece",  # preference models: calibration of sigmoid(margin)
            "eval_reward_before", "eval_reward", "final_reward", "final_kl", "final_completion_length",  # RL
            "steps", "train_examples", "eval_examples", "train_prompts", "eval_prompts")
    return [f"## Training: `{node.name}` ({node.kind})", ""] + trust.caveat(node, run) + _scalars(node, head) + \
        sections.image(path, run, f"{node.name} training curves")


def accuracy_section(node: NodeView, run: RunView, plot_dir: Path) -> List[str]:
    """Feedback model accuracy and calibration on multiple-choice evals (paper sec. 4.2)."""
    path = plots.calibration_plot(node.metrics["reliability"], node.name, plot_dir / f"{node.name}_calibration.png")
    head = ("accuracy", "mean_p_correct", "ece", "rows")
    return [f"## Feedback model accuracy: `{node.name}`", ""] + _scalars(node, head) + sections.image(
        path, run, f"{node.name} calibration")


def audit_section(node: NodeView, run: RunView, plot_dir: Path) -> List[str]:
    """The judge audit's calibration (the verdict itself opens the report)."""
    audit = node.metrics["audit"]
    path = plots.calibration_plot(audit.get("reliability") or [], f"{node.name} judge audit",
                                  plot_dir / f"{node.name}_audit_calibration.png")
    return [f"## Judge audit: `{node.name}`", "", f"{audit['items']} known-answer comparisons from "
            f"`{audit.get('set', '?')}` ({audit.get('method', '?')}, ensemble {audit.get('ensemble', '?')}, debias "
            f"{audit.get('debias', '?')}); each row with what every order scored is in `audit.jsonl` of the artifact; "
            f"{audit.get('ties', 0)} ties. Verdict and numbers: the box at the top.", ""] + sections.image(
        path, run, f"{node.name} judge audit calibration")


def transcripts(run: RunView) -> List[str]:
    """Side-by-side answers from an evaluate artifact, else SL-CAI examples."""
    evals = [n for n in run.nodes if n.path and any(isinstance(r.get("answers"), dict) for r in n.records)]
    sl = [n for n in run.nodes if n.path and n.is_sl()]
    if not evals and not sl:
        return []
    body = sections.eval_transcripts(evals[0]) if evals else sections.sl_transcripts(sl[0])
    return ["## Transcripts", ""] + body


def _scalars(node: NodeView, keys) -> List[str]:
    rows = [(k, node.metrics[k]) for k in keys if k in node.metrics and not isinstance(node.metrics[k], (dict, list))]
    return sections.table(("metric", "value"), rows) + [""] if rows else []
