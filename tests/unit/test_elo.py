"""Bradley-Terry Elo and win-rate intervals on synthetic outcomes with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from cai.eval.elo import (ELO_PER_LOGIT, Comparison, elo_ratings, fit_strengths, to_elo, wilson_interval,
                          win_rates)

TRUE_ELO = {"base": 0.0, "sl_cai": 200.0, "helpful_only": -150.0}


def simulate(n_prompts: int = 1000, seed: int = 0):
    """Every prompt compares each pair of models once, the winner drawn from the Elo win probability."""
    rng = np.random.default_rng(seed)
    names = list(TRUE_ELO)
    out = []
    for p in range(n_prompts):
        for i in range(3):
            for j in range(i + 1, 3):
                a, b = names[i], names[j]
                p_a = 1.0 / (1.0 + 10 ** ((TRUE_ELO[b] - TRUE_ELO[a]) / 400.0))
                out.append(Comparison(a, b, float(rng.random() < p_a), prompt=f"p{p}"))
    return out


def test_recovers_known_elo_differences_and_the_intervals_cover_them():
    ratings = elo_ratings(simulate(), reference="base", samples=200, seed=1)
    assert ratings["base"] == {"elo": 0.0, "low": 0.0, "high": 0.0, "comparisons": 2000}
    for model, true in TRUE_ELO.items():
        assert ratings[model]["elo"] == pytest.approx(true, abs=25)
        assert ratings[model]["low"] <= true <= ratings[model]["high"]
    assert 10 < ratings["sl_cai"]["high"] - ratings["sl_cai"]["low"] < 80  # ~ 4 standard errors of ~10 points


def test_a_75_percent_soft_win_is_400_log10_3_elo_points():
    comparisons = [Comparison("a", "b", 0.75) for _ in range(2000)]
    strengths = fit_strengths(comparisons)
    assert (strengths["a"] - strengths["b"]) * ELO_PER_LOGIT == pytest.approx(400 * math.log10(3), abs=0.5)
    assert ELO_PER_LOGIT == pytest.approx(400 / math.log(10))


def test_anchors_mean_1000_by_default_or_a_named_reference_at_zero():
    strengths = {"a": 0.5, "b": -0.2, "c": 0.0}
    centred = to_elo(strengths)
    assert sum(centred.values()) / 3 == pytest.approx(1000.0)
    assert centred["a"] - centred["b"] == pytest.approx(0.7 * ELO_PER_LOGIT)
    anchored = to_elo(strengths, reference="c")
    assert anchored["c"] == 0.0 and anchored["a"] == pytest.approx(0.5 * ELO_PER_LOGIT)
    with pytest.raises(ValueError, match="reference model 'zz'"):
        to_elo(strengths, reference="zz")


def test_wilson_interval_matches_hand_computed_values():
    # p = 0.8, n = 10, z = 1.95996: centre (0.8 + z^2/20) / (1 + z^2/10), half-width z sqrt(...) / (1 + z^2/10)
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = wilson_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-12) and high == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_swapping_sides_changes_nothing_and_swapping_winners_flips_signs():
    comparisons = simulate(n_prompts=100)
    swapped = [Comparison(c.model_b, c.model_a, 1.0 - c.score, c.weight, c.prompt) for c in comparisons]
    mirrored = [Comparison(c.model_a, c.model_b, 1.0 - c.score, c.weight, c.prompt) for c in comparisons]
    fit, fit_swapped, fit_mirrored = (fit_strengths(x) for x in (comparisons, swapped, mirrored))
    for model in TRUE_ELO:
        assert fit_swapped[model] == pytest.approx(fit[model], abs=1e-9)
        assert fit_mirrored[model] == pytest.approx(-fit[model], abs=1e-9)
    rates, same = oriented(win_rates(comparisons)), oriented(win_rates(swapped))
    assert rates == pytest.approx(same)
    assert all(rates[(a, b)] == pytest.approx(1.0 - rates[(b, a)]) for a, b in rates)


def oriented(rows):
    """Win rates keyed both ways round, so the orientation a table picked does not matter."""
    out = {}
    for r in rows:
        out[(r["model_a"], r["model_b"])], out[(r["model_b"], r["model_a"])] = r["win_rate"], 1.0 - r["win_rate"]
    return out


def test_an_unbeaten_model_stays_finite():
    comparisons = [Comparison("winner", "loser", 1.0, prompt=str(i)) for i in range(20)]
    ratings = elo_ratings(comparisons, samples=100)
    gap = ratings["winner"]["elo"] - ratings["loser"]["elo"]
    assert all(math.isfinite(v) for r in ratings.values() for v in (r["elo"], r["low"], r["high"]))
    assert 400 < gap < 3000
    rate = win_rates(comparisons)[0]
    assert rate["method"] == "wilson" and rate["win_rate"] == 1.0 and rate["high"] == 1.0 and rate["low"] < 0.9


def test_soft_win_rates_use_a_seeded_bootstrap_over_prompts():
    rng = np.random.default_rng(3)
    comparisons = [Comparison("a", "b", float(rng.uniform(0.4, 0.9)), prompt=f"p{i}") for i in range(60)]
    rate = win_rates(comparisons, samples=500, seed=7)[0]
    assert rate["method"] == "bootstrap" and rate["n"] == 60
    assert rate["low"] < rate["win_rate"] < rate["high"]
    assert rate["win_rate"] == pytest.approx(np.mean([c.score for c in comparisons]))
    assert win_rates(comparisons, samples=500, seed=7)[0] == rate


def test_weights_count_like_repeated_comparisons():
    once = [Comparison("a", "b", 1.0, weight=3.0), Comparison("a", "b", 0.0)]
    repeated = [Comparison("a", "b", 1.0)] * 3 + [Comparison("a", "b", 0.0)]
    assert fit_strengths(once) == pytest.approx(fit_strengths(repeated))
    assert win_rates(once, samples=50)[0]["win_rate"] == pytest.approx(0.75)


def test_comparisons_on_one_prompt_are_resampled_together():
    base = simulate(n_prompts=100, seed=5)
    independent = [Comparison(c.model_a, c.model_b, c.score, prompt=f"{c.prompt}-{k}") for c in base for k in range(4)]
    clustered = [Comparison(c.model_a, c.model_b, c.score, prompt=c.prompt) for c in base for _ in range(4)]

    def width(comparisons):
        r = elo_ratings(comparisons, reference="base", samples=200, seed=0)["sl_cai"]
        return r["high"] - r["low"]

    assert width(clustered) > 1.5 * width(independent)  # 4 copies of one prompt's outcome are not 4 pieces of evidence


def test_bad_comparisons_are_rejected():
    for bad in (Comparison("a", "a", 1.0), Comparison("a", "b", 1.5), Comparison("a", "b", 0.5, weight=-1)):
        with pytest.raises(ValueError, match="bad comparison"):
            fit_strengths([bad])
    assert elo_ratings([]) == {} and win_rates([]) == []
