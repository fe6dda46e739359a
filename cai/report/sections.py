"""Markdown sections of report.md: each function returns lines, or [] when the run has nothing for it."""
from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from cai.report.load import NodeView, RunView

TEXT_LIMIT = 600
SHORT_LIST = 8
# evaluate metrics the report already tabulates
SHOWN_ABOVE = ("elo", "win_rates", "judge", "evasiveness", "overrefusal", "eval_judge")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffd]")


def clean(text: Any, limit: int = TEXT_LIMIT) -> str:
    """Model text made safe for markdown: control and replacement characters shown as `?`, long text cut."""
    text = _CONTROL.sub("?", str(text if text is not None else ""))
    return text if len(text) <= limit else text[:limit] + f" [... {len(text) - limit} more characters]"


def cell(value: Any) -> str:
    """A table cell: numbers short, text on one line with pipes escaped."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None:
        return "null"
    return clean(value, 200).replace("|", "\\|").replace("\n", " ")


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> List[str]:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def quote(label: str, text: Any) -> List[str]:
    """A labelled block quote of model text (kept verbatim apart from `clean`)."""
    body = clean(text).strip() or "(empty)"
    return [f"**{label}**", ""] + ["> " + line for line in body.splitlines()] + [""]


def header(run: RunView) -> List[str]:
    """Title, recipe, seed, cache mode and overrides."""
    lines = [f"# CAI run report: recipe `{run.recipe}`", "", f"- run directory: `{run.dir}`",
             f"- seed: {run.plan.get('seed', '?')}, cache mode: {run.plan.get('cache_mode', '?')}"]
    if run.overrides:
        lines.append("- overrides: " + " ".join(f"`{o}`" for o in run.overrides))
    if run.plan.get("trust_remote_code"):
        lines.append("- **trust_remote_code: true** for " + ", ".join(f"`{m}`" for m in run.plan["trust_remote_code"])
                     + ": Python code from those models' repositories ran when they were loaded")
    return lines + [f"- regenerate: `python -m cai.report {run.dir}`", ""]


def plan(run: RunView) -> List[str]:
    """The plan as run: node, kind, key, status (cached / run / resume), inputs."""
    rows = [(n.name, n.kind, n.key, n.status if n.path else f"{n.status} (no artifact)",
             ", ".join(f"{slot}={ref}" for slot, ref in n.inputs.items())) for n in run.nodes]
    return ["## Plan", ""] + table(("node", "kind", "key", "status", "inputs"), rows) + [""]


def constitution(run: RunView) -> List[str]:
    """The constitution's name and the principle ids selected, from the composed config or an artifact."""
    found = _config_constitution(run) or _artifact_constitution(run)
    if not found:
        return []
    name, description, groups = found
    lines = ["## Constitution", "", f"`{name}`: {clean(description, 400)}".rstrip(": "), ""]
    for title, principles, selected in groups:
        lines += [f"**{title}**: {len(selected)} of {len(principles)} selected", ""]
        lines += table(("id", "weight", "text"), [(i, float(principles[i].get("weight", 1.0)),
                                                   principles[i].get("critique") or principles[i].get("text", ""))
                                                  for i in selected if i in principles]) + [""]
    return lines


def _config_constitution(run: RunView) -> Optional[Tuple[str, str, list]]:
    from omegaconf import OmegaConf

    c = run.config.get("constitution") if run.config is not None else None
    if c is None or OmegaConf.is_missing(c, "name"):
        return None
    groups = []
    for title, key, select in (("Critique-revision principles (SL-CAI)", "critique_revision", "select"),
                               ("Comparison principles (RL-CAI feedback)", "comparison", "comparison_select")):
        found = c.get(key)
        principles = OmegaConf.to_container(found) if OmegaConf.is_config(found) else dict(found or {})
        if principles:
            groups.append((title, principles, list(c.get(select) or []) or sorted(principles)))
    return str(c.name), str(c.get("description") or ""), groups


def _artifact_constitution(run: RunView) -> Optional[Tuple[str, str, list]]:
    import yaml

    name, groups = None, []
    for node in run.nodes:  # each stage records the constitution parts it read (critique_revision, label_preferences)
        path = node.file("constitution.yaml")
        found = yaml.safe_load(path.read_text(encoding="utf-8")) if path else None
        if isinstance(found, dict) and isinstance(found.get("principles"), dict):
            name = name or str(found.get("constitution", "?"))
            groups.append((f"Principles used by `{node.name}`", found["principles"], sorted(found["principles"])))
    return (name, "as recorded in the artifacts' constitution.yaml", groups) if groups else None


def flatten(metrics: Dict[str, Any], prefix: str = "") -> List[Tuple[str, Any]]:
    """Scalar metrics with nested dicts (and short lists) flattened to dotted keys; long lists summarized."""
    rows: List[Tuple[str, Any]] = []
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += flatten(value, name + ".") if value else [(name, "{}")]
        elif isinstance(value, list) and value and all(isinstance(v, dict) and "step" in v for v in value):
            rows.append((name, f"{len(value)} logged steps (plotted above)"))
        elif isinstance(value, list) and 0 < len(value) <= SHORT_LIST and any(isinstance(v, dict) for v in value):
            rows += flatten({str(i): v for i, v in enumerate(value)}, name + ".")
        elif isinstance(value, list):
            short = len(value) <= SHORT_LIST and all(not isinstance(v, (dict, list)) for v in value)
            rows.append((name, ", ".join(map(cell, value)) if short else f"list of {len(value)}"))
        else:
            rows.append((name, value))
    return rows


def metrics(run: RunView) -> List[str]:
    """One table per computed node with all its metrics."""
    lines = ["## Metrics per stage", "", "Every metric each node's metrics.json holds (nested keys dotted).", ""]
    for node in run.nodes:
        if node.path is None:
            lines += [f"### {node.name} ({node.kind})", "",
                      "No artifact: not computed (a dry run, or the run stopped before this node).", ""]
        elif node.metrics:
            shown = {k: "tables above" if k in SHOWN_ABOVE and node.is_eval() else v for k, v in node.metrics.items()}
            rows = flatten(shown)
            # Folded (GitHub and most viewers render <details>): training stages log dozens of eval fields.
            lines += [f"### {node.name} ({node.kind})", "", f"<details><summary>{len(rows)} metrics</summary>", ""]
            lines += table(("metric", "value"), rows) + ["", "</details>", ""]
    return lines


def image(path, run: RunView, alt: str) -> List[str]:
    """A markdown image line relative to the report."""
    return [f"![{alt}]({path.relative_to(run.dir).as_posix()})", ""] if path else []


def sl_transcripts(node: NodeView, count: int = 3) -> List[str]:
    """A few prompt -> initial answer -> critique -> revision examples from SL-CAI records."""
    lines = [f"### SL-CAI examples from `{node.name}` ({min(count, len(node.records))} of {len(node.records)})", ""]
    for rec in node.records[:count]:
        lines += [f"#### {cell(rec.get('id', ''))} {cell(rec.get('category', ''))}".rstrip(), ""]
        lines += quote("Prompt", rec.get("prompt")) + quote("Initial answer", rec.get("initial"))
        for number, r in enumerate(rec.get("rounds") or [], 1):
            lines += quote(f"Critique {number} (principle `{cell(r.get('principle_id', '?'))}`)", r.get("critique"))
            lines += quote(f"Revision {number}", r.get("revision"))
    return lines


def eval_transcripts(node: NodeView, count: int = 4) -> List[str]:
    """The same prompts answered by each evaluated model, side by side, from each prompt set in turn."""
    rows = [r for r in node.records if isinstance(r.get("answers"), dict)]
    by_set: Dict[str, List[dict]] = {}
    for rec in rows:
        by_set.setdefault(str(rec.get("set", "")), []).append(rec)
    picked = [rec for group in zip(*by_set.values()) for rec in group][:count] or rows[:count]
    picked += [r for r in rows if r not in picked][:count - len(picked)]
    lines = [f"### The same prompts answered by each model (`{node.name}`, {len(picked)} of {len(rows)})", ""]
    for rec in picked:
        where = ", ".join(cell(rec[k]) for k in ("set", "category") if rec.get(k))
        lines += quote(f"Prompt ({where})".replace(" ()", ""), rec.get("prompt"))
        refused = rec.get("refusal") if isinstance(rec.get("refusal"), dict) else {}
        for model, answer in rec["answers"].items():
            lines += quote(f"`{cell(model)}`" + (" (refusal)" if refused.get(model) else ""), answer)
        for j in rec.get("judgments") or []:
            if isinstance(j, dict) and isinstance(j.get("p_a_better"), (int, float)):
                lines.append(f"- {cell(j.get('axis'))}: P(`{cell(j.get('model_a'))}` better than "
                             f"`{cell(j.get('model_b'))}`) = {j['p_a_better']:.2f}")
        lines += [""] if rec.get("judgments") else []
    return lines
