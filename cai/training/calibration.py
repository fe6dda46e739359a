"""How well a reward model's pairwise preferences match soft labels: accuracy, calibration (ECE) and margins.

The model's preference for the chosen response is sigmoid(r_chosen - r_rejected) (the Bradley-Terry probability
it was trained to output); the label is p_chosen from the feedback model (1 for hard-labelled sources). Pure
Python, so it is unit-tested without torch.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence

from cai.feedback.labels import expected_calibration_error, mean, reliability


def sigmoid(x: float) -> float:
    """The logistic function, stable for large |x|."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def pairwise_accuracy(margins: Sequence[float], p_chosen: Sequence[float]) -> Optional[float]:
    """Share of pairs where the model prefers the side the label prefers; a zero margin counts half, and pairs
    labelled exactly 0.5 (no preference) are left out. None when no pair has a preference."""
    scored = [(m, p) for m, p in zip(margins, p_chosen) if p != 0.5]
    if not scored:
        return None
    hits = [0.5 if m == 0 else float((m > 0) == (p > 0.5)) for m, p in scored]
    return sum(hits) / len(hits)


def calibration(margins: Sequence[float], p_chosen: Sequence[float], bins: int = 10) -> Dict[str, Any]:
    """Accuracy, ECE of sigmoid(margin) against p_chosen over equal-width bins, mean margin and the mean
    probabilities, plus the reliability table (per bin: count, mean model probability, mean label)."""
    if len(margins) != len(p_chosen):
        raise ValueError(f"{len(margins)} margins but {len(p_chosen)} labels")
    probs = [sigmoid(m) for m in margins]
    table: List[Dict[str, float]] = reliability(probs, list(p_chosen), bins=bins)
    for row in table:  # name the columns for what they hold here: the label mean is not an accuracy
        row["p_model"], row["p_label"] = row.pop("confidence"), row.pop("accuracy")
    ece = expected_calibration_error([{"count": r["count"], "confidence": r["p_model"], "accuracy": r["p_label"]}
                                      for r in table])
    return {"pairs": len(margins), "pairwise_accuracy": pairwise_accuracy(margins, p_chosen), "ece": ece,
            "mean_margin": mean(margins), "mean_p_model": mean(probs), "mean_p_label": mean(p_chosen),
            "table": table}
