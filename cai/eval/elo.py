"""Elo scores and win rates from pairwise comparisons, the way the paper reports harmlessness and helpfulness
(Bai et al. 2022: Elo scores fit to crowdworker preference comparisons between models).

Model: Bradley-Terry, P(a beats b) = sigmoid(theta_a - theta_b). Strengths are fit by maximum likelihood with
Newton's method (step-halving keeps every step uphill). A soft score s in [0, 1] enters the likelihood as a fractional
win, s * log p + (1 - s) * log(1 - p); a comparison's weight multiplies its term. A Gaussian prior with precision
PRIOR on every theta keeps an unbeaten model finite and fixes the free offset; with tens of comparisons per model it
moves scores by a fraction of an Elo point.

Elo scale: ELO_PER_LOGIT = 400 / ln 10 points per logit, so 400 points are 10:1 odds, as in chess.
Anchor: `reference=None` puts the mean over models at 1000; `reference=NAME` puts that model at 0 (every other score
then reads as points above or below it, and its own interval is [0, 0]).
Intervals: 95% percentile bootstrap over prompts (all comparisons of a resampled prompt come along), seeded; win
rates of hard outcomes (scores 0 or 1, unit weights) use the Wilson score interval instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from cai.feedback.labels import wilson_interval  # noqa: F401 - also this module's API (tests, report rows)

PRIOR = 0.01
ELO_PER_LOGIT = 400.0 / math.log(10.0)
ELO_MEAN = 1000.0
SAMPLES = 1000


@dataclass(frozen=True)
class Comparison:
    """One judged pair: `score` is how much `model_a` won (1: a better, 0: b better, 0.5: tie, soft in between)."""

    model_a: str
    model_b: str
    score: float
    weight: float = 1.0
    prompt: Optional[str] = None
    """Bootstrap unit: comparisons on one prompt are resampled together (None: each comparison is its own unit)."""


def model_names(comparisons: Sequence[Comparison]) -> List[str]:
    """Models in order of first appearance."""
    return list(dict.fromkeys(name for c in comparisons for name in (c.model_a, c.model_b)))


def _arrays(comparisons: Sequence[Comparison], models: Sequence[str]):
    """Index arrays (a, b), scores, weights and bootstrap-unit ids; bad comparisons are ValueErrors."""
    index = {m: i for i, m in enumerate(models)}
    for c in comparisons:
        if c.model_a == c.model_b or not 0.0 <= c.score <= 1.0 or c.weight < 0:
            raise ValueError(f"bad comparison {c}: need two different models, score in [0, 1], weight >= 0")
    a = np.array([index[c.model_a] for c in comparisons], dtype=int)
    b = np.array([index[c.model_b] for c in comparisons], dtype=int)
    s = np.array([c.score for c in comparisons], dtype=float)
    w = np.array([c.weight for c in comparisons], dtype=float)
    units = {}
    group = np.array([units.setdefault(c.prompt if c.prompt is not None else ("#", i), len(units))
                      for i, c in enumerate(comparisons)], dtype=int)
    return a, b, s, w, group, len(units)


def _objective(theta, a, b, won, lost, prior) -> float:
    d = theta[a] - theta[b]
    # log sigmoid(x) = -logaddexp(0, -x), stable for large |x|
    loglik = -(won * np.logaddexp(0.0, -d) + lost * np.logaddexp(0.0, d))
    return float(loglik.sum() - 0.5 * prior * np.dot(theta, theta))


def _newton(a, b, won, lost, m: int, prior: float, theta=None, iters: int = 100) -> np.ndarray:
    """Maximize the penalized Bradley-Terry log-likelihood of (weighted) wins and losses of a over b; logits."""
    theta = np.zeros(m) if theta is None else theta.copy()
    value, total = _objective(theta, a, b, won, lost, prior), won + lost
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(theta[a] - theta[b])))
        r, h = won - total * p, total * p * (1.0 - p)
        grad = np.bincount(a, r, m) - np.bincount(b, r, m) - prior * theta
        hess = (np.bincount(a * m + b, h, m * m) + np.bincount(b * m + a, h, m * m)
                - np.bincount(a * m + a, h, m * m) - np.bincount(b * m + b, h, m * m)).reshape(m, m)
        step = np.linalg.solve(hess - prior * np.eye(m), -grad)
        t = 1.0
        while t > 1e-6 and _objective(theta + t * step, a, b, won, lost, prior) < value - 1e-12:
            t /= 2  # Newton can overshoot far from the optimum (e.g. an unbeaten model); halve until uphill
        theta = theta + t * step
        value = _objective(theta, a, b, won, lost, prior)
        if np.max(np.abs(t * step)) < 1e-9:
            break
    return theta


def _by_pair(a, b, s, w, group, units: int, m: int):
    """The likelihood only needs each pair's weighted wins and losses: sum them per (unit, pair), so a bootstrap
    resample is a matrix product and every fit has one row per pair, not per comparison."""
    flip = a > b
    lo, hi = np.where(flip, b, a), np.where(flip, a, b)
    won = w * np.where(flip, 1.0 - s, s)
    pairs, k = np.unique(lo * m + hi, return_inverse=True)
    n = len(pairs)
    unit_won = np.bincount(group * n + k, won, units * n).reshape(units, n)
    unit_total = np.bincount(group * n + k, w, units * n).reshape(units, n)
    return pairs // m, pairs % m, unit_won, unit_total - unit_won


def fit_strengths(comparisons: Sequence[Comparison], prior: float = PRIOR) -> Dict[str, float]:
    """Bradley-Terry strengths (logits, MAP under the prior) of every model in `comparisons`."""
    models = model_names(comparisons)
    m = len(models)
    a, b, won, lost = _by_pair(*_arrays(comparisons, models), m)
    return dict(zip(models, _newton(a, b, won.sum(0), lost.sum(0), m, prior).tolist()))


def _anchor(elo: np.ndarray, models: Sequence[str], reference: Optional[str]) -> np.ndarray:
    """Shift Elo scores (rows are samples) so the reference is 0, or the mean over models is ELO_MEAN."""
    if reference is None:
        return elo - elo.mean(axis=-1, keepdims=True) + ELO_MEAN
    if reference not in models:
        raise ValueError(f"reference model {reference!r} is not among the compared models {list(models)}")
    i = list(models).index(reference)
    return elo - elo[..., i:i + 1]


def to_elo(strengths: Dict[str, float], reference: Optional[str] = None) -> Dict[str, float]:
    """Logit strengths on the Elo scale, anchored (see the module docstring)."""
    models = list(strengths)
    elo = _anchor(np.array([strengths[m] for m in models]) * ELO_PER_LOGIT, models, reference)
    return dict(zip(models, elo.tolist()))


def _resample_counts(units: int, samples: int, seed: int) -> np.ndarray:
    """How often each bootstrap unit is drawn, per resample: shape (samples, units)."""
    return np.random.default_rng(seed).multinomial(units, np.full(units, 1.0 / units), size=samples)


def _interval(values: np.ndarray, level: float) -> Tuple[np.ndarray, np.ndarray]:
    tail = 50.0 * (1.0 - level)
    return np.nanpercentile(values, tail, axis=0), np.nanpercentile(values, 100.0 - tail, axis=0)


def elo_ratings(comparisons: Sequence[Comparison], reference: Optional[str] = None, samples: int = SAMPLES,
                seed: int = 0, level: float = 0.95, prior: float = PRIOR) -> Dict[str, Dict[str, float]]:
    """`{model: {elo, low, high, comparisons}}`: the fitted Elo and its bootstrap interval over prompts."""
    models = model_names(comparisons)
    if not models:
        return {}
    m = len(models)
    arrays = _arrays(comparisons, models)
    a, b, won, lost = _by_pair(*arrays, m)
    theta = _newton(a, b, won.sum(0), lost.sum(0), m, prior)
    boot = np.array([_newton(a, b, counts @ won, counts @ lost, m, prior, theta)
                     for counts in _resample_counts(arrays[-1], samples, seed)]) if samples else theta[None, :]
    elo = _anchor(theta * ELO_PER_LOGIT, models, reference)
    low, high = _interval(_anchor(boot * ELO_PER_LOGIT, models, reference), level)
    seen = np.bincount(arrays[0], minlength=m) + np.bincount(arrays[1], minlength=m)
    return {name: {"elo": float(elo[i]), "low": float(low[i]), "high": float(high[i]), "comparisons": int(seen[i])}
            for i, name in enumerate(models)}


def _pair_rate(rows: List[Comparison], samples: int, seed: int, level: float) -> Dict[str, float]:
    """Weighted mean score of the pair's first model, with a Wilson (hard) or bootstrap (soft) interval."""
    s = np.array([c.score for c in rows])
    w = np.array([c.weight for c in rows])
    rate = float(np.dot(w, s) / w.sum()) if w.sum() > 0 else float("nan")
    if np.all((s == 0) | (s == 1)) and np.all(w == 1):
        low, high = wilson_interval(float(s.sum()), len(rows), level)
        return {"win_rate": rate, "low": low, "high": high, "n": len(rows), "method": "wilson"}
    _, _, _, _, group, units = _arrays(rows, model_names(rows))
    unit_won, unit_weight = np.bincount(group, w * s, units), np.bincount(group, w, units)
    counts = _resample_counts(units, samples, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (counts @ unit_won) / (counts @ unit_weight)
    low, high = _interval(boot, level)
    return {"win_rate": rate, "low": float(low), "high": float(high), "n": len(rows), "method": "bootstrap"}


def win_rates(comparisons: Sequence[Comparison], samples: int = SAMPLES, seed: int = 0,
              level: float = 0.95) -> List[Dict[str, object]]:
    """Per pair of models (oriented by first appearance): how often the first won, with a 95% interval."""
    order = {m: i for i, m in enumerate(model_names(comparisons))}
    pairs: Dict[Tuple[str, str], List[Comparison]] = {}
    for c in comparisons:
        if order[c.model_a] > order[c.model_b]:  # orient every comparison of a pair the same way
            c = Comparison(c.model_b, c.model_a, 1.0 - c.score, c.weight, c.prompt)
        pairs.setdefault((c.model_a, c.model_b), []).append(c)
    return [{"model_a": a, "model_b": b, **_pair_rate(rows, samples, seed, level)}
            for (a, b), rows in pairs.items()]
