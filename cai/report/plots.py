"""The report's PNG plots, drawn with matplotlib's object API on the Agg canvas (no pyplot, no global backend)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

DPI = 110
MARKERS = "osD^vP*X"
# Training panels: (title, y label, train key candidates, eval key candidates); a panel is drawn when its data is.
PANELS = (
    ("Loss", "loss", ("loss",), ("eval_loss",)),
    ("Reward accuracy (chosen > rejected)", "accuracy", ("rewards/accuracies", "accuracy"),
     ("eval_rewards/accuracies", "eval_accuracy")),
    ("Reward margin (chosen - rejected)", "margin", ("rewards/margins", "margin"),
     ("eval_rewards/margins", "eval_margin")),
    ("RL reward", "mean reward", ("reward", "objective/rlhf_reward", "objective/scores"), ()),
    ("KL to the reference policy", "KL (nats)", ("kl", "objective/kl"), ()),
)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path


def sl_plot(records: List[dict], title: str, path: Path) -> Path:
    """SL-CAI: how often each revision changed the answer, length before vs after, and principle usage."""
    fig = Figure(figsize=(15, 4.6), layout="constrained")
    changed, lengths, usage = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 1, 1.2]})
    fig.suptitle(f"{title}: SL-CAI critiques and revisions ({len(records)} prompts)")
    labels, fractions = revision_changes(records)
    bars = changed.bar(labels, fractions, color="tab:blue")
    changed.bar_label(bars, labels=[f"{f:.0%}" for f in fractions])
    changed.set(title="Revisions that changed the answer", ylabel="fraction of prompts", ylim=(0, 1.1))
    initial = [len(r.get("initial") or "") for r in records]
    final = [len(r.get("final") or "") for r in records]
    top = max(initial + final + [1])
    lengths.scatter(initial, final, s=18, alpha=0.6, color="tab:green")
    lengths.plot([0, top], [0, top], ls="--", color="grey", label="unchanged length")
    lengths.set(title="Answer length before and after revision", xlabel="initial answer (characters)",
                ylabel="final answer (characters)", xlim=(0, top * 1.1), ylim=(0, top * 1.1))
    lengths.legend(loc="best")
    counts = Counter(r.get("principle_id", "?") for rec in records for r in rec.get("rounds") or [])
    names = sorted(counts, key=lambda k: (counts[k], k))
    usage.barh(names, [counts[n] for n in names], color="tab:orange")
    usage.set(title="Principles sampled for critiques", xlabel="times used (all rounds)")
    usage.tick_params(axis="y", labelsize=8)
    usage.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _save(fig, path)


def revision_changes(records: List[dict]) -> Tuple[List[str], List[float]]:
    """Per round, the fraction of prompts whose revision differs from the answer before it; then final vs initial."""
    rounds = max((len(r.get("rounds") or []) for r in records), default=0)
    labels, fractions, n = [], [], max(len(records), 1)
    for i in range(rounds):
        changed = 0
        for rec in records:
            answers = [rec.get("initial") or ""] + [r.get("revision") or "" for r in rec.get("rounds") or []]
            previous = next((a for a in reversed(answers[:i + 1]) if a), "")
            changed += i + 1 < len(answers) and bool(answers[i + 1]) and answers[i + 1] != previous
        labels.append(f"round {i + 1}")
        fractions.append(changed / n)
    labels.append("final vs initial")
    fractions.append(sum((r.get("final") or "") != (r.get("initial") or "") for r in records) / n)
    return labels, fractions


def labels_plot(records: List[dict], title: str, path: Path, clamp_high: Optional[float] = None) -> Path:
    """Histogram of p_chosen, stacked by labeling method; with clamping, the unclamped labels as an outline."""
    fig = Figure(figsize=(8.5, 4.8), layout="constrained")
    ax = fig.subplots()
    by_method: Dict[str, List[float]] = {}
    for r in records:
        if isinstance(r.get("p_chosen"), (int, float)):
            by_method.setdefault(str(r.get("method") or "labels"), []).append(float(r["p_chosen"]))
    edges = [0.5 + i * 0.025 for i in range(21)]
    ax.hist([_right_closed(v) for v in by_method.values()], bins=edges, stacked=True,
            label=[f"p_chosen ({m})" for m in by_method], edgecolor="white")
    clamped = [r for r in records if r.get("clamped")]
    if clamped:
        raw = [float(r["p_chosen_unclamped"]) for r in records
               if isinstance(r.get("p_chosen_unclamped"), (int, float))]
        ax.hist(_right_closed(raw), bins=edges, histtype="step", lw=1.5, color="black", label="before clamping")
    if clamp_high is not None and clamped:
        ax.axvline(clamp_high, ls="--", color="grey",
                   label=f"clamp at {clamp_high:g}: {len(clamped)} of {len(records)} labels clamped")
    ax.set(title=f"{title}: soft labels of {len(records)} pairs",
           xlabel="p_chosen (feedback model's probability that the chosen response is better)",
           ylabel="pairs", xlim=(0.5, 1))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    return _save(fig, path)


def _right_closed(values: List[float]) -> List[float]:
    # Bins (a, b]: a label clamped to exactly 0.6 belongs in the bin ending at 0.6, not the one starting there.
    return [max(v - 1e-9, 0.5) for v in values]


def calibration_plot(table: List[dict], title: str, path: Path) -> Optional[Path]:
    """Reliability diagram of a multiple-choice eval: accuracy vs confidence per bin (sec. 4.2, figure 4)."""
    rows = [r for r in table if isinstance(r, dict) and r.get("count")]
    if not rows:
        return None
    fig = Figure(figsize=(6, 5), layout="constrained")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect calibration")
    ax.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], marker="o", label="feedback model")
    for r in rows:
        ax.annotate(str(r["count"]), (r["confidence"], r["accuracy"]), textcoords="offset points", xytext=(4, -10),
                    fontsize=7)
    ax.set(title=f"{title}: calibration (points labelled with counts)", xlabel="confidence (probability of the "
           "model's top option)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper left")
    return _save(fig, path)


def series(steps: List[dict], keys: Sequence[str]) -> Tuple[str, List[float], List[float]]:
    """The first of `keys` logged at some step, as (key, steps, values)."""
    for key in keys:
        points = {r["step"]: r[key] for r in steps if isinstance(r.get(key), (int, float))}
        if points:
            return key, list(points), list(points.values())
    return "", [], []


def training_plot(steps: List[dict], title: str, path: Path,
                  extra_eval: Dict[str, List[Tuple[float, float]]]) -> Optional[Path]:
    """One panel per quantity the log holds (loss, reward accuracy and margin, RL reward, KL) against step.

    `extra_eval` adds held-out points logged outside the trainer's history (eval before training at step 0)."""
    panels = []
    for name, ylabel, train_keys, eval_keys in PANELS:
        train, evals = series(steps, train_keys), series(steps, eval_keys)
        more = [p for k in eval_keys for p in extra_eval.get(k, [])]
        if train[1] or evals[1] or more:
            panels.append((name, ylabel, train, evals, more))
    if not panels:
        return None
    fig = Figure(figsize=(4.8 * len(panels) + 0.6, 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    fig.suptitle(f"{title}: training curves")
    for ax, (name, ylabel, train, evals, more) in zip(axes, panels):
        if train[1]:
            ax.plot(train[1], train[2], marker=".", label=f"train ({train[0]})")
        points = sorted(set(zip(evals[1], evals[2])) | set(more))
        if points:
            ax.plot(*zip(*points), marker="o", ls="--", label="held-out eval (before / after / logged)")
        ax.set(title=name, xlabel="optimizer step", ylabel=ylabel)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    return _save(fig, path)


def _spread(score: dict) -> Tuple[float, List[float], List[float]]:
    """(Elo, [below], [above]) for an error bar; a missing interval is zero-width, and a percentile interval that
    misses its point estimate is clipped (matplotlib refuses negative error bars)."""
    elo = float(score["elo"])
    return elo, [max(elo - float(score.get("low", elo)), 0.0)], [max(float(score.get("high", elo)) - elo, 0.0)]


def elo_plot(elo: Dict[str, Dict[str, dict]], path: Path) -> Optional[Path]:
    """Harmlessness vs helpfulness Elo per model with 95% intervals (the paper's frontier plot); one axis of points
    when only one of the two was scored."""
    present = [a for a in ("helpful", "harmless") if isinstance(elo.get(a), dict) and elo[a]]
    if not present:
        return None
    fig = Figure(figsize=(7, 5.5), layout="constrained")
    ax = fig.subplots()
    if len(present) == 2:
        for i, m in enumerate(m for m in elo["helpful"] if m in elo["harmless"]):
            (x, x_lo, x_hi), (y, y_lo, y_hi) = _spread(elo["helpful"][m]), _spread(elo["harmless"][m])
            # one marker shape per model, larger first, and staggered names: models at one point stay readable
            ax.errorbar(x, y, xerr=[x_lo, x_hi], yerr=[y_lo, y_hi], fmt=MARKERS[i % len(MARKERS)], capsize=3,
                        markersize=max(9 - 1.5 * i, 4), label=m)
            ax.annotate(m, (x, y), textcoords="offset points", xytext=(7, 7 - 13 * i), fontsize=9)
        ax.set(title="Harmlessness vs helpfulness (Elo, 95% bootstrap CI)", xlabel="helpfulness Elo",
               ylabel="harmlessness Elo")
        ax.legend(fontsize=8)
    else:
        names = list(elo[present[0]])
        spreads = [_spread(elo[present[0]][m]) for m in names]
        ax.errorbar(names, [s[0] for s in spreads], yerr=[[s[1][0] for s in spreads], [s[2][0] for s in spreads]],
                    fmt="o", capsize=4, color="tab:blue")
        ax.set(title=f"{present[0].capitalize()} Elo per model (95% bootstrap CI)", xlabel="model",
               ylabel=f"{present[0]} Elo")
    return _save(fig, path)


EVASIVENESS_BARS = (("helpful", "helpful requests refused (detector)", "tab:red"),
                    ("helpful_judge", "helpful requests refused (judge)", "tab:orange"),
                    ("redteam", "red-team prompts refused (detector)", "tab:grey"))


def evasiveness_plot(evasiveness: Dict[str, dict], path: Path) -> Optional[Path]:
    """Refusal rates per model with 95% Wilson intervals: helpful requests (evasiveness), red-team for contrast."""
    models = list(evasiveness)
    bars = [b for b in EVASIVENESS_BARS if any((evasiveness[m].get(b[0]) or {}).get("n") for m in models)]
    if not models or not bars:
        return None
    fig = Figure(figsize=(max(6.0, 1.6 * len(models) * len(bars) / 2 + 2.5), 4.8), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(bars)
    for k, (key, label, color) in enumerate(bars):
        rates = [evasiveness[m].get(key) or {"rate": 0.0, "low": 0.0, "high": 0.0, "n": 0} for m in models]
        xs = [i - 0.4 + width * (k + 0.5) for i in range(len(models))]
        ys = [r["rate"] for r in rates]
        err = [[max(r["rate"] - r["low"], 0.0) for r in rates], [max(r["high"] - r["rate"], 0.0) for r in rates]]
        ax.bar(xs, ys, width, yerr=err, capsize=3, color=color, label=label)
        for x, r in zip(xs, rates):  # above the interval, so the error bar never crosses the text
            ax.text(x, max(r["high"], r["rate"]) + 0.02, f"{r['rate']:.0%}\nn={r['n']}", ha="center", va="bottom",
                    fontsize=7)
    ax.set_xticks(range(len(models)), models)
    ax.set(title="Refusals per model (95% Wilson CI); evasiveness = helpful requests refused",
           ylabel="share of prompts refused", ylim=(0, 1.3))
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(loc="upper left", fontsize=8, ncols=len(bars))
    return _save(fig, path)
