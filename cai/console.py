"""rich tables for the plan (before compute) and the summary (after)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

from rich.console import Console
from rich.table import Table

from cai import graph

console = Console(stderr=False, width=160)
STYLE = {"cached": "green", "run": "yellow", "resume": "cyan", "ran": "yellow"}


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
    """Node, cached or ran, wall time, key metrics and artifact path; then where the run is."""
    table = Table(title="summary", title_justify="left")
    for column in ("node", "status", "wall s", "metrics", "artifact"):
        table.add_column(column, overflow="fold")
    for r in results:
        table.add_row(r.node.name, f"[{STYLE.get(r.status, 'white')}]{r.status}[/]", f"{r.seconds:.1f}",
                      headline(r.metrics), str(r.path))
    console.print(table)
    console.print(f"run directory: {run_dir}")
