"""rich tables for the plan (before compute) and the summary (after)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from rich.console import Console
from rich.table import Table

from cai import graph
from cai.feedback.verdict import AT_CHANCE, TRUSTWORTHY, WEAK, downstream, verdicts

console = Console(stderr=False, width=160)
STYLE = {"cached": "green", "run": "yellow", "resume": "cyan", "ran": "yellow"}
VERDICT_STYLE = {TRUSTWORTHY: "green", WEAK: "yellow", AT_CHANCE: "bold red"}


def print_plan(plan: List[Any], statuses: Dict[str, str], store: Any) -> None:
    """Node, kind, key, cached or to run, and inputs, in execution order."""
    table = Table(title="plan", title_justify="left")
    for column in ("node", "kind", "key", "status", "inputs"):
        table.add_column(column, overflow="fold")
    for node in plan:
        status = statuses[node.name]
        inputs = ", ".join(f"{slot}={ref}" for slot, ref in graph.describe_inputs(node))
        table.add_row(node.name, node.stage.name, node.key, f"[{STYLE[status]}]{status}[/]", inputs)
    console.print(table)


def print_shards(rows: List[Dict[str, Any]]) -> None:
    """The shard plan: per sharded node, shards, examples each, executor and resources (cai.shard_plan)."""
    if not rows:
        return
    table = Table(title="shards", title_justify="left")
    for column in ("node", "shards", "examples", "each", "executor", "resources"):
        table.add_column(column, overflow="fold")
    for row in rows:
        total = "?" if row["examples"] is None else str(row["examples"])
        table.add_row(row["node"], str(row["shards"]), total, row["per_shard"], row["executor"], row["resources"])
    console.print(table)


def headline(metrics: Dict[str, Any], count: int = 4) -> str:
    """The first few scalar metrics, formatted short."""
    items = [(k, v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return "  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in items[:count])


def print_summary(results: List[Any], run_dir: Path) -> None:
    """Node, cached or ran, wall time, key metrics and artifact path; then each audited judge's verdict (rows
    resting on labels at chance say so) and where the run is."""
    found = verdicts({r.node.name: r.metrics.get("audit") for r in results})
    chance = {n for n, v in found.items() if v.label == AT_CHANCE and by_name(results)[n].node.stage.name
              == "label_preferences"}
    parents = {r.node.name: [ref.target for ref in r.node.inputs.values() if ref.kind == "node"] for r in results}
    tainted = downstream(parents, chance)
    table = Table(title="summary", title_justify="left")
    for column in ("node", "status", "wall s", "metrics", "artifact"):
        table.add_column(column, overflow="fold")
    for r in results:
        own = found.get(r.node.name)
        note = f"[red]not evidence: labels of {', '.join(tainted[r.node.name])} at chance[/]  " \
            if r.node.name in tainted else ""
        if own is not None and own.label == AT_CHANCE and r.node.name not in chance:
            note += "[red]not evidence: its judge is at chance[/]  "
        table.add_row(r.node.name, f"[{STYLE.get(r.status, 'white')}]{r.status}[/]", f"{r.seconds:.1f}",
                      note + headline(r.metrics), str(r.path))
    console.print(table)
    for name, verdict in found.items():
        console.print(f"[{VERDICT_STYLE.get(verdict.label, 'white')}]{verdict.line(name)}[/]", highlight=False)
    console.print(f"run directory: {run_dir}")


def by_name(results: List[Any]) -> Dict[str, Any]:
    """Results keyed by node name."""
    return {r.node.name: r for r in results}
