"""The report's opening box, "Can these labels be trusted?": one verdict per audited judge (a labeling node's, the
eval judge's, a judge_audit node's; cai/feedback/verdict.py decides), and the caveat every node downstream of a
judge at chance carries: what it learned or ranked is not evidence."""
from __future__ import annotations

from typing import Dict, List

from cai.feedback.verdict import AT_CHANCE, Verdict, downstream, judge_verdict
from cai.report import sections
from cai.report.load import NodeView, RunView

ROLES = {"label_preferences": "labels", "evaluate": "eval judge", "judge_audit": "judge audit"}


def audited(run: RunView) -> Dict[str, NodeView]:
    """Nodes whose metrics hold a judge audit, in plan order."""
    return {n.name: n for n in run.nodes if n.path and isinstance(n.metrics.get("audit"), dict)}


def verdicts(run: RunView) -> Dict[str, Verdict]:
    """{node: verdict} for every audited node."""
    return {name: judge_verdict(node.metrics["audit"], name) for name, node in audited(run).items()}


def box(run: RunView) -> List[str]:
    """The opening section: each audited judge's verdict, its numbers, what it means and what to try next."""
    found = verdicts(run)
    if not found:
        return []
    lines = ["## Can these labels be trusted?", ""]
    for name, verdict in found.items():
        node = audited(run)[name]
        judge = node.inputs.get("judge", "?")
        lines += [f"> **`{name}`** ({ROLES.get(node.kind, node.kind)}, judge `{judge}`): **{verdict.label.upper()}**. "
                  f"{verdict.numbers[0].upper()}{verdict.numbers[1:]}.", ">", f"> {verdict.meaning[0].upper()}{verdict.meaning[1:]}.", ">",
                  f"> Next: {verdict.next_step}.", ""]
    rows = []
    for name, node in audited(run).items():
        audit = node.metrics["audit"]
        kinds = ", ".join(f"{k} {v['accuracy']:.0%} (n={v['items']})" for k, v in (audit.get("by_kind") or {}).items())
        rows.append((name, found[name].label, f"{audit['accuracy']:.0%}", f"{audit['low']:.0%}-{audit['high']:.0%}",
                     audit["items"], _num(audit.get("order_agreement")), _num(audit.get("position_bias"), "+.2f"),
                     _num(audit.get("ece")), kinds))
    lines += sections.table(("node", "verdict", "known-answer accuracy", "95% CI", "items", "order agreement",
                             "position bias", "ECE", "per kind"), rows)
    return lines + ["", "Known answers: comparisons whose better answer is not in doubt (`cai://judge_audit`), "
                    "scored with the node's own judge, principles and switches. At chance: the 95% interval reaches "
                    "50%; trustworthy: its lower bound is at least 75% and order agreement at least 0.75; weak: "
                    "between (README, \"Can these labels be trusted?\").", ""]


def at_chance_above(run: RunView) -> Dict[str, List[str]]:
    """{node: the labeling nodes at chance among its ancestors} (a node's own eval judge is not its ancestor)."""
    names = {n.name for n in run.nodes}
    parents = {n.name: [r for r in n.inputs.values() if r in names] for n in run.nodes}
    chance = {name for name, v in verdicts(run).items() if v.label == AT_CHANCE
              and audited(run)[name].kind == "label_preferences"}
    return downstream(parents, chance)


def caveat(node: NodeView, run: RunView) -> List[str]:
    """The warning a section opens with when its results rest on labels or a judge at chance."""
    lines = []
    above = at_chance_above(run).get(node.name)
    if above:
        nodes = ", ".join(f"`{a}`" for a in above)
        lines.append(f"> **Not evidence:** this rests on labels from {nodes}, whose judge is at chance on known "
                     f"answers (see the box at the top): what it learned or scored reflects noise.")
    own = verdicts(run).get(node.name)
    if own is not None and own.label == AT_CHANCE and node.kind == "label_preferences":
        lines.append("> **At chance:** these labels are no better than a coin on known answers (see the box at the "
                     "top); anything trained on them learns noise.")
    elif own is not None and own.label == AT_CHANCE:
        lines.append("> **Not evidence:** this node's judge is at chance on known answers: its rankings and "
                     "refusal judgments are noise; read the detector's refusal rates instead.")
    return [line for item in lines for line in (item, "")]


def _num(value, spec: str = ".2f") -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "n/a"
