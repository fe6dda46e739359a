"""Weighted mixtures (seeded split, subsample, repeat) and the training examples built from source rows."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from cai.errors import CaiError
from cai.stage_api import Input
from cai.stages.dpo import label_options
from cai.training.pairs import keep, read_pairs
from cai.training.examples import preference_pair, sft_example
from cai.training.mixture import mix, split, weighted

USER = {"role": "user", "content": "How do I pick a lock?"}
REVISED = {"role": "assistant", "content": "I can't help with that, but a locksmith can."}
INITIAL = {"role": "assistant", "content": "Insert a tension wrench..."}


def test_weights_subsample_and_repeat_deterministically():
    rows = list(range(10))
    assert len(weighted(rows, 0.5, random.Random(0))) == 5
    assert sorted(weighted(rows, 2.0, random.Random(0))) == sorted(rows * 2)
    one_and_half = weighted(rows, 1.5, random.Random(0))
    assert len(one_and_half) == 15 and set(one_and_half) == set(rows)
    assert weighted(rows, 0.3, random.Random(1)) == weighted(rows, 0.3, random.Random(1))


def test_split_keeps_a_training_row_and_is_seeded():
    train, held_out = split(list(range(20)), 0.25, random.Random(3))
    assert len(held_out) == 5 and sorted(train + held_out) == list(range(20))
    assert split([1], 0.5, random.Random(0)) == ([1], [])


def test_mix_holds_out_before_repeating_so_eval_never_leaks():
    a, b = [f"a{i}" for i in range(40)], [f"b{i}" for i in range(100)]
    mixed = mix([("a", a, 3.0), ("b", b, 0.1)], seed=0, eval_fraction=0.1, eval_max=1000)
    assert not set(mixed.train) & set(mixed.eval)
    assert [s["train"] for s in mixed.sources] == [36 * 3, 9] and [s["eval"] for s in mixed.sources] == [4, 1]
    again = mix([("a", a, 3.0), ("b", b, 0.1)], seed=0, eval_fraction=0.1, eval_max=1000)
    assert again.train == mixed.train and again.eval == mixed.eval
    assert mix([("a", a, 3.0), ("b", b, 0.1)], seed=1, eval_fraction=0.1, eval_max=1000).train != mixed.train
    assert len(mix([("a", a, 1.0)], seed=0, eval_fraction=0.5, eval_max=7).eval) == 7


def test_mix_without_training_rows_fails():
    with pytest.raises(CaiError, match="no training rows"):
        mix([("a", [], 1.0)], seed=0, eval_fraction=0.1, eval_max=10)


def test_sft_examples_in_both_formats():
    chat = [USER, REVISED]
    assert sft_example(chat, "prompt_completion") == {"prompt": [USER], "completion": [REVISED]}
    assert sft_example(chat, "messages") == {"messages": chat}
    with_system = sft_example(chat, "prompt_completion", system_prompt="Be kind.")
    assert with_system["prompt"][0] == {"role": "system", "content": "Be kind."}
    assert sft_example([USER], "messages") is None  # no assistant turn to learn
    assert sft_example("text", "messages") is None


def test_sl_cai_conversation_becomes_revision_over_initial():
    # the hf/ export of critique_revision: chosen/rejected repeat the user turn (implicit prompt)
    row = {"prompt": USER["content"], "chosen": [USER, REVISED], "rejected": [USER, INITIAL], "messages": [USER, REVISED]}
    assert preference_pair(row) == {"prompt": [USER], "chosen": [REVISED], "rejected": [INITIAL], "p_chosen": None}


def test_preference_rows_in_other_layouts():
    text = preference_pair({"prompt": "q", "chosen": "good", "rejected": "bad", "p_chosen": 0.8})
    assert text["prompt"] == [{"role": "user", "content": "q"}] and text["chosen"][0]["content"] == "good"
    assert text["p_chosen"] == 0.8
    implicit = preference_pair({"chosen": [USER, REVISED], "rejected": [USER, INITIAL]})
    assert implicit["prompt"] == [USER] and implicit["rejected"] == [INITIAL]
    assert preference_pair({"prompt": "q", "chosen": "", "rejected": "bad"}) is None


def test_pairs_dropped_for_no_signal_or_low_confidence():
    counts = {}
    same = preference_pair({"prompt": "q", "chosen": "a", "rejected": "a"})
    unsure = preference_pair({"prompt": "q", "chosen": "a", "rejected": "b", "p_chosen": 0.55})
    sure = preference_pair({"prompt": "q", "chosen": "a", "rejected": "b", "p_chosen": 0.9})
    unlabeled = preference_pair({"prompt": "q", "chosen": "a", "rejected": "b"})
    kept = [keep(p, 0.6, counts) for p in (same, unsure, sure, unlabeled, None)]
    assert kept == [False, False, True, True, False]
    assert counts == {"identical": 1, "low_p_chosen": 1, "unusable": 1}


def test_preferences_artifact_p_chosen_comes_from_data_jsonl(tmp_path: Path):
    from datasets import Dataset

    Dataset.from_list([{"prompt": [USER], "chosen": [REVISED], "rejected": [INITIAL]}]).save_to_disk(
        str(tmp_path / "hf"))
    (tmp_path / "data.jsonl").write_text(json.dumps({"id": "x", "p_chosen": 0.7}) + "\n")
    rows = read_pairs(Input("node", "prefs", path=tmp_path))
    assert preference_pair(rows[0])["p_chosen"] == 0.7


def test_soft_labels_become_label_smoothing_for_the_robust_loss():
    from types import SimpleNamespace

    ctx = SimpleNamespace(node="dpo", cfg=SimpleNamespace(soft_labels=True))
    pairs = [{"p_chosen": 0.9}, {"p_chosen": 0.7}, {"p_chosen": None}]  # unlabeled pairs count as p = 1
    options = label_options(ctx, pairs)
    assert options["loss_type"] == ["robust"] and abs(options["label_smoothing"] - 0.4 / 3) < 1e-9
    with pytest.raises(CaiError, match="mean 1 - p_chosen is 0.500"):
        label_options(ctx, [{"p_chosen": 0.5}])
    assert label_options(SimpleNamespace(node="dpo", cfg=SimpleNamespace(soft_labels=False)), pairs) == {}
