"""Pure label math for the feedback model (Bai et al. 2022, sections 4.1-4.3): soft labels from option log-probs,
A/B swap averaging, principle ensembles, CoT clamping, and the calibration numbers of a multiple-choice eval."""
from __future__ import annotations

import math
from statistics import NormalDist
from typing import Dict, List, Sequence, Tuple


def softmax(logprobs: Sequence[float]) -> List[float]:
    """Normalized option probabilities from (unnormalized) option log-probs."""
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    return [w / total for w in weights]


def p_first(p_options: Sequence[float], swapped: bool) -> float:
    """P(the pair's first response is better) from one ordering's (A, B) probabilities."""
    return p_options[1] if swapped else p_options[0]


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (0.0 of nothing)."""
    return sum(values) / len(values) if values else 0.0


def combine(p_first_by_principle: Sequence[Sequence[float]]) -> float:
    """Average over orderings within each sampled principle, then over principles (the paper's ensemble, 4.1)."""
    return mean([mean(orders) for orders in p_first_by_principle])


def clamp(p: float, low: float, high: float) -> float:
    """Clamp a probability into [low, high]: CoT answers are overconfident, 40-60% works best (sections 4.1, 4.3)."""
    return min(max(p, low), high)


def to_label(p_first_better: float) -> Tuple[int, float]:
    """(index of the chosen response, p_chosen >= 0.5); a tie keeps the first response."""
    return (0, p_first_better) if p_first_better >= 0.5 else (1, 1.0 - p_first_better)


def position_bias(p_a: Sequence[float]) -> float:
    """Mean P(option A) minus 0.5 over all scored orderings: > 0 means the judge favours the first slot."""
    return mean(p_a) - 0.5 if p_a else 0.0


def order_agreement(pairs: Sequence[Tuple[float, float]]) -> float:
    """Fraction of (AB, BA) orderings that pick the same response, from their P(first response better)."""
    if not pairs:
        return 0.0
    return sum((ab >= 0.5) == (ba >= 0.5) for ab, ba in pairs) / len(pairs)


def histogram(values: Sequence[float], low: float = 0.5, high: float = 1.0, bins: int = 5) -> Dict[str, int]:
    """Counts per equal-width bin of [low, high], keyed "0.50-0.60"; the top edge falls in the last bin."""
    width = (high - low) / bins
    counts = {f"{low + i * width:.2f}-{low + (i + 1) * width:.2f}": 0 for i in range(bins)}
    keys = list(counts)
    for v in values:
        counts[keys[min(max(int((v - low) / width), 0), bins - 1)]] += 1
    return counts


def reliability(confidence: Sequence[float], correct: Sequence[bool], bins: int = 10) -> List[Dict[str, float]]:
    """Reliability table over equal-width confidence bins of [0, 1]: count, mean confidence and accuracy per bin."""
    rows = []
    for i in range(bins):
        low, high = i / bins, (i + 1) / bins
        inside = [(c, k) for c, k in zip(confidence, correct) if low <= c < high or (i == bins - 1 and c == 1.0)]
        rows.append({"low": low, "high": high, "count": len(inside),
                     "confidence": mean([c for c, _ in inside]), "accuracy": mean([float(k) for _, k in inside])})
    return rows


def expected_calibration_error(table: Sequence[Dict[str, float]]) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over a reliability table's bins."""
    total = sum(row["count"] for row in table)
    if not total:
        return 0.0
    return sum(row["count"] * abs(row["accuracy"] - row["confidence"]) for row in table) / total


def wilson_interval(wins: float, n: float, level: float = 0.95) -> Tuple[float, float]:
    """Wilson score interval for a binomial proportion `wins / n` (good coverage at small n and near 0 or 1)."""
    if n <= 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + level / 2.0)
    p, z2 = wins / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)
