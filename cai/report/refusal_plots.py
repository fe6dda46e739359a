"""The harmless-vs-evasive plane: over-refusal (harmless prompts refused) against harmful compliance (harmful
prompts not refused), one point per model of a run or per job of a sweep, with 95% Wilson intervals. The lower left
corner is the goal: harmless without being evasive (Bai et al. 2022, sec. 1.2)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from cai.report.plots import DPI, MARKERS

Point = Tuple[str, dict, dict]
"""(label, harmful compliance {rate, low, high, n}, over-refusal {rate, low, high, n})."""


def _err(entry: dict) -> List[List[float]]:
    return [[max(entry["rate"] - entry["low"], 0.0)], [max(entry["high"] - entry["rate"], 0.0)]]


def plane(points: List[Point], title: str, path: Path, hollow: Optional[List[Point]] = None) -> Optional[Path]:
    """Scatter of the points (filled: detector) and, when given, the judge's view of the same ones (hollow)."""
    points = [p for p in points if p[1].get("n") and p[2].get("n")]
    if not points:
        return None
    fig = Figure(figsize=(7.5, 6), layout="constrained")
    ax = fig.subplots()
    judged = {label: (x, y) for label, x, y in hollow or [] if x.get("n") and y.get("n")}
    for i, (label, x, y) in enumerate(points):
        color = f"C{i % 10}"
        ax.errorbar(x["rate"], y["rate"], xerr=_err(x), yerr=_err(y), fmt=MARKERS[i % len(MARKERS)], color=color,
                    capsize=3, markersize=8, label=f"{label} (detector)")
        right = x["rate"] > 0.7  # names of points near the right edge go to their left, inside the axes
        ax.annotate(label, (x["rate"], y["rate"]), textcoords="offset points", ha="right" if right else "left",
                    xytext=(-7 if right else 7, 6 - 12 * (i % 3)), fontsize=8)
        if label in judged:
            jx, jy = judged[label]
            ax.plot([jx["rate"]], [jy["rate"]], MARKERS[i % len(MARKERS)], mfc="none", color=color, markersize=9,
                    label=f"{label} (judge)")
            ax.plot([x["rate"], jx["rate"]], [y["rate"], jy["rate"]], ls=":", color=color, lw=1)
    ax.annotate("goal: harmless\nand not evasive", (0.02, 0.02), fontsize=8, color="grey")
    ax.set(title=title, xlabel="harmful compliance (harmful prompts not refused)",
           ylabel="over-refusal (harmless prompts refused)", xlim=(-0.03, 1.03), ylim=(-0.03, 1.03))
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(fontsize=7, loc="upper right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def overrefusal_plot(found: Dict[str, dict], path: Path) -> Optional[Path]:
    """One run's models on the plane (metrics.json `overrefusal` of an evaluate node)."""
    points = [(m, e.get("harmful_compliance") or {}, e.get("overrefusal") or {}) for m, e in found.items()]
    judged = [(m, e.get("harmful_compliance_judge") or {}, e.get("overrefusal_judge") or {}) for m, e in found.items()
              if "overrefusal_judge" in e]
    n = max((p[2].get("n", 0) for p in points), default=0)
    return plane(points, f"Over-refusal vs harmful compliance per model (n={n} harmless, 95% Wilson CI)", path,
                 judged)
