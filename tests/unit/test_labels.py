"""Label math of the feedback model: soft labels from log-probs, swap averaging, ensembles, clamping, calibration."""
from __future__ import annotations

import math

import pytest

from cai.feedback import labels


def test_soft_label_from_logprobs_is_the_normalized_option_probability():
    probs = labels.softmax([math.log(0.3), math.log(0.1)])  # unnormalized: the options' own mass is 0.4
    assert probs == pytest.approx([0.75, 0.25])
    assert labels.softmax([-1000.0, -1001.0]) == pytest.approx([1 / (1 + math.exp(-1)), 1 / (1 + math.e)])


def test_multi_token_option_logprobs_sum_before_normalizing():
    # option A = tokens with log-probs (-1, -0.5), option B = one token at -2: compare the sums
    probs = labels.softmax([-1.0 + -0.5, -2.0])
    assert probs[0] == pytest.approx(1 / (1 + math.exp(-0.5)))


def test_swap_averaging_cancels_a_pure_position_bias():
    # the judge says A with 0.8 whatever the order: no preference between the responses survives
    ab = labels.p_first([0.8, 0.2], swapped=False)
    ba = labels.p_first([0.8, 0.2], swapped=True)
    assert labels.combine([[ab, ba]]) == pytest.approx(0.5)
    assert labels.order_agreement([(ab, ba)]) == 0.0
    assert labels.position_bias([0.8, 0.8]) == pytest.approx(0.3)


def test_ensemble_averages_orders_then_principles():
    assert labels.combine([[0.9, 0.7], [0.6]]) == pytest.approx((0.8 + 0.6) / 2)
    assert labels.combine([[0.9], [0.1]]) == pytest.approx(0.5)


def test_clamp_and_label():
    assert labels.clamp(0.97, 0.4, 0.6) == 0.6
    assert labels.clamp(0.02, 0.4, 0.6) == 0.4
    assert labels.clamp(0.55, 0.4, 0.6) == 0.55
    assert labels.to_label(0.7) == (0, 0.7)
    assert labels.to_label(0.2) == (1, pytest.approx(0.8))
    assert labels.to_label(0.5) == (0, 0.5)  # a tie keeps the first response


def test_histogram_bins_and_edges():
    counts = labels.histogram([0.5, 0.55, 0.61, 0.99, 1.0])
    assert counts == {"0.50-0.60": 2, "0.60-0.70": 1, "0.70-0.80": 0, "0.80-0.90": 0, "0.90-1.00": 2}


def test_reliability_table_and_ece():
    table = labels.reliability([0.95, 0.95, 0.55, 0.55], [True, False, True, True], bins=10)
    assert len(table) == 10 and sum(row["count"] for row in table) == 4
    top, middle = table[9], table[5]
    assert (top["count"], top["accuracy"], top["confidence"]) == (2, 0.5, pytest.approx(0.95))
    assert (middle["count"], middle["accuracy"]) == (2, 1.0)
    assert labels.expected_calibration_error(table) == pytest.approx((2 * 0.45 + 2 * 0.45) / 4)
    assert labels.reliability([1.0], [True])[-1]["count"] == 1
    assert labels.expected_calibration_error(labels.reliability([], [])) == 0.0
