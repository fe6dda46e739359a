"""A sweep read at once: `report.md` at a multirun root, one row per job (its overrides, judge verdicts, the final
model's Elo with intervals, over-refusal and harmful compliance), and the jobs on the harmless/evasive plane.

Written by a Hydra callback at the end of every `python -m cai -m ...` (conf/cai.yaml, `hydra.callbacks`) and by
`python -m cai.report --compare DIR`; both call `build_compare`. This is how a constitution ablation is read.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, List, Optional

from hydra.experimental.callback import Callback

from cai.errors import CaiError
from cai.report import sections, trust
from cai.report.load import NodeView, RunView, load_run

log = logging.getLogger("cai")


def job_dirs(sweep_dir: Path) -> List[Path]:
    """The sweep's job directories (each holds a plan.json), in job order."""
    found = [p.parent for p in Path(sweep_dir).glob("*/plan.json")]
    return sorted(found, key=lambda p: (int(p.name.split("_")[0]) if p.name.split("_")[0].isdigit() else 1 << 30,
                                        p.name))


def eval_node(run: RunView) -> Optional[NodeView]:
    """The job's first evaluate artifact."""
    return next((n for n in run.nodes if n.path and n.is_eval()), None)


def final_model(node: NodeView) -> Optional[str]:
    """The last compared model (the most trained one in the shipped recipes)."""
    models = list((node.metrics.get("models") or {}).keys())
    return models[-1] if models else None


def interval(entry: Any, spec: str) -> str:
    """`value [low, high]` of an Elo score or a rate entry; n/a when absent."""
    if not isinstance(entry, dict):
        return "n/a"
    value = entry.get("elo", entry.get("rate"))
    if not isinstance(value, (int, float)):
        return "n/a"
    return f"{format(value, spec)} [{format(entry.get('low', value), spec)}, {format(entry.get('high', value), spec)}]"


def model_cells(node: Optional[NodeView], model: Optional[str]) -> List[str]:
    """harmless Elo, helpful Elo, over-refusal, harmful compliance of one model of an eval node."""
    if node is None or model is None:
        return ["n/a"] * 4
    elo, refusal = node.metrics.get("elo") or {}, (node.metrics.get("overrefusal") or {}).get(model) or {}
    return [interval((elo.get("harmless") or {}).get(model), ".0f"), interval((elo.get("helpful") or {}).get(model),
            ".0f"), interval(refusal.get("overrefusal"), ".0%"), interval(refusal.get("harmful_compliance"), ".0%")]


def varying(runs: List[RunView]) -> List[List[str]]:
    """Each job's overrides that not every job shares (all of them when the jobs share every one)."""
    common = set.intersection(*(set(r.overrides) for r in runs)) if runs else set()
    return [[o for o in r.overrides if o not in common] or r.overrides for r in runs]


def build_compare(sweep_dir: Path) -> Path:
    """Write `sweep_dir/report.md` (and plots/sweep_plane.png); returns its path."""
    from cai.report.refusal_plots import plane

    sweep_dir = Path(sweep_dir)
    runs = [load_run(d) for d in job_dirs(sweep_dir)]
    if not runs:
        raise CaiError(f"{sweep_dir}: no job directories with a plan.json; is this a multirun root "
                       f"($CAI_HOME/runs/multirun/<time>/)?")
    rows, detail, points = [], [], []
    for run, changed in zip(runs, varying(runs)):
        node = eval_node(run)
        model = final_model(node) if node else None
        verdicts = "; ".join(f"{n}: {v.label}" for n, v in trust.verdicts(run).items()) or "not audited"
        rows.append((run.dir.name, " ".join(changed), verdicts, model or "n/a", *model_cells(node, model)))
        for m in list((node.metrics.get("models") or {}) if node else []):
            detail.append((run.dir.name, m, *model_cells(node, m)))
        refusal = ((node.metrics.get("overrefusal") or {}).get(model) or {}) if node else {}
        if refusal:
            points.append((f"{run.dir.name}: {' '.join(changed)}", refusal.get("harmful_compliance") or {},
                           refusal.get("overrefusal") or {}))
    plot = plane(points, "Sweep jobs: over-refusal vs harmful compliance (final model, 95% CI)",
                 sweep_dir / "plots" / "sweep_plane.png")
    lines = [f"# CAI sweep report: {len(runs)} jobs", "", f"- multirun root: `{sweep_dir}`",
             f"- regenerate: `python -m cai.report --compare {sweep_dir}`", "", "## One row per job", ""]
    lines += sections.table(("job", "overrides", "judge verdicts", "final model", "harmless Elo [95% CI]",
                             "helpful Elo [95% CI]", "over-refusal [95% CI]", "harmful compliance [95% CI]"), rows)
    lines += ["", "Elo is relative to the models each job compares (mean 1000 unless a reference is set); over-refusal "
              "and harmful compliance are absolute shares, comparable across jobs. A verdict `at chance` means "
              "that job's labels (or eval judge) are noise: its rows are not evidence.", ""]
    lines += [f"![jobs on the harmless/evasive plane]({plot.relative_to(sweep_dir).as_posix()})", ""] if plot else []
    lines += ["## Every compared model", ""] + sections.table(
        ("job", "model", "harmless Elo", "helpful Elo", "over-refusal", "harmful compliance"), detail) + [""]
    lines += ["## Job reports", ""] + [f"- [{r.dir.name}]({r.dir.name}/report.md)" for r in runs] + [""]
    out = sweep_dir / "report.md"
    out.write_text("\n".join(lines), encoding="utf-8")
    return out


class SweepReport(Callback):
    """Hydra callback: the comparison report at the multirun root once every job has returned."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        """Build it; a failure is a warning (the jobs' own artifacts and reports stand)."""
        try:
            path = build_compare(Path(str(config.hydra.sweep.dir)))
        except Exception as err:  # noqa: BLE001 - the sweep's results matter more than its summary
            log.warning("could not write the sweep report: %s: %s", type(err).__name__, err)
            return
        print(f"sweep report: {path}")
