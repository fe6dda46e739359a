"""Seeded principle sampling: deterministic, weighted, honouring `select`."""
from __future__ import annotations

from collections import Counter

import pytest

from cai.constitution import fewshot_chat, sample_principles, selected_ids
from cai.keys import stable_rng
from cai.errors import CaiError

PRINCIPLES = {"a": {"weight": 1.0}, "b": {"weight": 1.0}, "c": {"weight": 8.0}}


def test_same_seed_same_draws_and_other_seed_differs():
    draw = lambda seed: [sample_principles(PRINCIPLES, ["a", "b", "c"], 1, stable_rng(seed, pid, 0))[0]
                         for pid in range(200)]
    assert draw(0) == draw(0)
    assert draw(0) != draw(1)


def test_weights_shift_the_draws():
    counts = Counter(sample_principles(PRINCIPLES, ["a", "b", "c"], 4000, stable_rng(0)))
    assert counts["c"] / 4000 == pytest.approx(0.8, abs=0.03)


def test_select_restricts_and_validates():
    assert selected_ids(PRINCIPLES, ["b"], "constitution.select") == ["b"]
    assert selected_ids(PRINCIPLES, [], "constitution.select") == ["a", "b", "c"]
    with pytest.raises(CaiError, match=r"constitution.select: selects unknown principle\(s\) \['z'\]"):
        selected_ids(PRINCIPLES, ["z"], "constitution.select")


def test_fewshot_chat_keeps_selection_order():
    exemplars = {"second": {"messages": [{"role": "user", "content": "2"}]},
                 "first": {"messages": [{"role": "user", "content": "1"}]}}
    assert [m["content"] for m in fewshot_chat(exemplars)] == ["2", "1"]
