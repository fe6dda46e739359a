"""samples.md for a training stage: headline metrics, the training curve, and held-out prompts answered by the
trained model (reloaded from its artifact, so this also shows that the saved model loads and generates)."""
from __future__ import annotations

from typing import Any, Dict, List

from cai.stage_api import StageContext

HEADLINE = ("train_loss", "eval_loss_before", "eval_loss", "eval_reward_accuracy_before", "eval_reward_accuracy",
            "eval_reward_margin", "eval_reward_before", "eval_reward", "final_reward", "final_kl",
            "final_completion_length", "steps", "resumed_from", "train_examples", "eval_examples", "train_prompts",
            "eval_prompts", "dropped_pairs")


def write_samples(ctx: StageContext, metrics: Dict[str, Any], curve_keys: List[str], prompts: List[List[dict]],
                  answers: List[str], references: Dict[str, List[str]]) -> None:
    """Write samples.md into the workdir."""
    lines = [f"# {ctx.node}: {ctx.cfg.kind}", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(metrics[k])} |" for k in HEADLINE if k in metrics]
    lines += ["", "## Training curve", "", "| step | " + " | ".join(curve_keys) + " |",
              "|---" * (len(curve_keys) + 1) + "|"]
    for row in metrics.get("curve", metrics.get("loss_curve", [])):
        lines.append(f"| {row['step']} | " + " | ".join(_fmt(row.get(k)) for k in curve_keys) + " |")
    lines += ["", f"## Held-out prompts answered by the trained model (greedy, {len(answers)})", ""]
    for i, (prompt, answer) in enumerate(zip(prompts, answers)):
        lines += [f"### {i + 1}", "", f"**Prompt:** {prompt[-1]['content']}", ""]
        lines += [f"**{name.capitalize()}:** {values[i]}" + "\n" for name, values in references.items()]
        lines += [f"**Trained model:** {answer.strip()}", ""]
    (ctx.workdir / "samples.md").write_text("\n".join(lines), encoding="utf-8")


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
