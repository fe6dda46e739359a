"""The report's section for an evaluate node: which prompts were held out, the harmlessness-vs-helpfulness Elo plot,
Elo and win-rate tables per axis, the judge's order agreement, and evasiveness (table and plot).

metrics.json keys read (all optional except `elo`): `elo` and `win_rates` per axis, `judge` per axis
`{order_agreement, position_bias, judgments, identical_answer_ties}`, `prompts` `{excluded_seen, <set>: {used,
excluded_seen, held_out}}`, and `evasiveness` `{MODEL: {helpful: {rate, low, high, n}, redteam: {...},
helpful_judge: {...}}}` (cai/eval/report_rows.py writes it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from cai.report import plots, refusal_plots, sections, trust
from cai.report.load import NodeView, RunView

SET_NAMES = {"redteam": "red-team", "helpful": "helpful"}


def eval_section(node: NodeView, run: RunView, plot_dir: Path) -> List[str]:
    """Held-out prompts, the Elo plot and tables, win rates, judge diagnostics, evasiveness."""
    metrics = node.metrics
    elo = _dict(metrics.get("elo"))
    lines = [f"## Evaluation: `{node.name}`", ""] + trust.caveat(node, run) + independence_lines(
        _dict(metrics.get("eval_judge"))) + held_out_lines(_dict(metrics.get("prompts")))
    lines += sections.image(plots.elo_plot(elo, plot_dir / f"{node.name}_elo.png"), run, "Elo")
    for axis, scores in elo.items():
        if isinstance(scores, dict) and scores:
            rows = [(m, *(_num(s.get(k), ".0f") for k in ("elo", "low", "high")), s.get("comparisons"))
                    for m, s in scores.items() if isinstance(s, dict)]
            lines += [f"**{axis} Elo**", ""] + sections.table(("model", "Elo", "95% low", "95% high", "comparisons"),
                                                              rows) + [""]
    for axis, rows in _dict(metrics.get("win_rates")).items():
        if isinstance(rows, list) and rows:
            lines += [f"**{axis} win rates** (model A over model B)", ""]
            lines += sections.table(("model A", "model B", "win rate", "95% low", "95% high", "n"),
                                    [(r.get("model_a"), r.get("model_b"), *(_num(r.get(k), ".3f") for k in
                                      ("win_rate", "low", "high")), r.get("n")) for r in rows if isinstance(r, dict)])
            lines += [""]
    return lines + judge_lines(_dict(metrics.get("judge"))) + evasiveness_lines(node, run, plot_dir) + \
        overrefusal_lines(node, run, plot_dir)


def independence_lines(found: Dict[str, Any]) -> List[str]:
    """Which judge graded, and a warning when it is the model that labeled the compared models' training data."""
    if not found:
        return []
    same = found.get("same_as_labeling") or []
    if not same:
        labelers = ", ".join(f"`{j['node']}`" for j in found.get("labeling_judges") or []) or "none upstream"
        return [f"Eval judge: `{found.get('resolved')}`; labeling judges of the compared models: {labelers}.", ""]
    nodes = ", ".join(f"`{n}`" for n in same)
    return [f"> **The evaluation grades itself:** the eval judge (`{found.get('resolved')}`, from "
            f"`{found.get('reference')}`) is the model that labeled {nodes}, so the models trained on those labels "
            "are scored by their teacher's own taste. Give the evaluation its own judge: "
            "`+model@models.eval_judge=NAME`.", ""]


def overrefusal_lines(node: NodeView, run: RunView, plot_dir: Path) -> List[str]:
    """Over-refusal vs harmful compliance per model, with 95% intervals (table and plot)."""
    found = {m: e for m, e in _dict(node.metrics.get("overrefusal")).items() if isinstance(e, dict)}
    if not found:
        return []
    judged = any("overrefusal_judge" in e for e in found.values())
    keys = ["overrefusal", "harmful_compliance"] + (["overrefusal_judge", "harmful_compliance_judge"] if judged else [])
    names = {"overrefusal": "harmless prompts refused (detector)", "harmful_compliance": "harmful prompts "
             "complied with (detector)", "overrefusal_judge": "harmless refused (judge)",
             "harmful_compliance_judge": "harmful complied (judge)"}
    header = ["model"] + [h for k in keys for h in (names[k], "95% CI")]
    rows = [(m, *(v for k in keys for v in _rate(e.get(k)))) for m, e in found.items()]
    used = _dict(_dict(node.metrics.get("prompts")).get("overrefusal"))
    path = refusal_plots.overrefusal_plot(found, plot_dir / f"{node.name}_overrefusal.png")
    return ["**Over-refusal**: harmless prompts that look dangerous (killing a hung Docker container, shooting "
            "portraits at dusk) refused, "
            "against harmful contrasts complied with (lower is better on both; the paper's harmless-vs-helpful "
            f"tension). {used.get('harmless', '?')} harmless and {used.get('harmful', '?')} harmful prompts "
            "(`cai://overrefusal` unless set).", ""] + sections.table(header, rows) + [""] + sections.image(
        path, run, "over-refusal vs harmful compliance")


def held_out_lines(prompts: Dict[str, Any]) -> List[str]:
    """One line: prompts used per set and how many were excluded because a compared model's ancestor saw them."""
    parts = [f"{p['used']} {SET_NAMES.get(s, s)}" for s, p in prompts.items() if isinstance(p, dict) and "used" in p]
    if not parts:
        return []
    return [f"Held-out prompts: {' + '.join(parts)}; {prompts.get('excluded_seen', 0)} excluded because an ancestor "
            f"stage of a compared model saw them ({prompts.get('lineage_artifacts', 0)} artifacts in the lineage).",
            ""]


def judge_lines(judge: Dict[str, Any]) -> List[str]:
    """The judge's A/B order agreement and position bias per axis (how much to trust the Elo above)."""
    rows = [(axis, d.get("judgments"), d.get("identical_answer_ties"), _num(d.get("order_agreement"), ".2f"),
             _num(d.get("position_bias"), "+.3f")) for axis, d in judge.items() if isinstance(d, dict)]
    if not rows:
        return []
    return ["**Judge consistency** (order agreement: both A/B orders pick the same answer; position bias: mean "
            "P(A) - 0.5)", ""] + sections.table(("axis", "judgments", "identical-answer ties", "order agreement",
                                                 "position bias"), rows) + [""]


def evasiveness_lines(node: NodeView, run: RunView, plot_dir: Path) -> List[str]:
    """How often each model refuses helpful requests (and red-team ones, for contrast), with 95% intervals."""
    found = {m: e for m, e in _dict(node.metrics.get("evasiveness")).items() if isinstance(e, dict)}
    if not found:
        return []
    judged = any("helpful_judge" in e for e in found.values())
    header = ["model", "refuses helpful requests (detector)", "95% CI"] + (
        ["refuses helpful (judge)", "95% CI"] if judged else []) + ["refuses red-team prompts (detector)"]
    rows = [(m, *_rate(e.get("helpful")), *(_rate(e.get("helpful_judge")) if judged else ()),
             _rate(e.get("redteam"))[0]) for m, e in found.items()]
    path = plots.evasiveness_plot(found, plot_dir / f"{node.name}_evasiveness.png")
    return ["**Evasiveness**: the share of ordinary helpful requests a model refuses (lower is better); refusing "
            "red-team prompts is shown for contrast. Detector: refusal phrases in the answer's opening "
            "(cai/eval/refusal.py).", ""] + sections.table(header, rows) + [""] + sections.image(
        path, run, "evasiveness")


def _rate(entry: Any) -> tuple:
    if not isinstance(entry, dict) or not entry.get("n"):
        return ("n/a", "")
    return (f"{entry['rate']:.0%} ({round(entry['rate'] * entry['n'])}/{entry['n']})",
            f"{entry['low']:.0%} - {entry['high']:.0%}")


def _dict(value: Any) -> Dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _num(value: Any, spec: str) -> Any:
    return format(value, spec) if isinstance(value, (int, float)) else "n/a" if value is None else value
