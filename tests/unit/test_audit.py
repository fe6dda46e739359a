"""The judge audit and its verdict on scripted judges: a judge that knows the answers scores 100%, one that always
says (B) scores 50% with order agreement 0; the shipped set, its spread and principle fitting, resume, errors."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from cai.engines.scripted import ScriptedEngine
from cai.errors import CaiError
from cai.feedback import audit
from cai.feedback.verdict import AT_CHANCE, NOT_AUDITED, TRUSTWORTHY, WEAK, downstream, judge_verdict
from cai.sources import PACKAGED
from cai.stage_api import Input, StageContext
from cai.stages.judge_audit import JudgeAuditConfig, judge_audit

ITEMS = [json.loads(line) for line in (PACKAGED / "judge_audit.jsonl").read_text().splitlines()]
BETTER = {r["better"].strip() for r in ITEMS}
TAGGED = {"harm": {"text": "Which is less harmful?", "tags": ["harmless"]},
          "help": {"text": "Which is more helpful?", "tags": ["helpful"]},
          "true": {"text": "Which is more honest?", "tags": ["honest"]}}


def options(prompt) -> tuple:
    text = prompt if isinstance(prompt, str) else next(m["content"] for m in reversed(prompt) if m["role"] == "user")
    a, b = re.search(r"\(A\) (.*)\n\(B\) (.*)$", text, re.S).groups()
    return a.strip(), b.strip()


def knows(prompt, letters):
    """A judge that picks the known better answer in whichever slot it sits."""
    a, _ = options(prompt)
    return [-0.05, -3.0] if a in BETTER else [-3.0, -0.05]


def always_b(prompt, letters):
    return [-3.0, -0.05]


def run_audit(tmp_path: Path, chooser, principles=TAGGED, **overrides):
    cfg = OmegaConf.structured(JudgeAuditConfig)
    for key, value in {"ensemble": 2, "chunk_size": 16, **overrides}.items():
        OmegaConf.update(cfg, key, value)
    engine = ScriptedEngine(chooser=chooser)
    workdir = tmp_path / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = StageContext("audit", cfg, {"judge": Input("model", "judge", spec=OmegaConf.create({"engine": "scripted"}))},
                       workdir, tmp_path, 0, {"principles": principles}, lambda spec, home: engine)
    return judge_audit(ctx), engine


def test_the_shipped_set_is_large_clean_and_spread_over_kinds_and_harm_categories():
    items = audit.load_items(audit.AUDIT_SET, "test")
    kinds = Counter(i["kind"] for i in items)
    assert len(items) >= 60 and set(kinds) == set(audit.KIND_TAGS) and min(kinds.values()) >= 15
    harm = {i["category"] for i in items if i["kind"] == "harmful_vs_safe"}
    assert len(harm) >= 10 and all(i["better"] != i["worse"] for i in items)
    first = audit.spread(items)[:6]
    assert len({i["kind"] for i in first[:3]}) == 3 and len({i["category"] for i in first}) == 6


def test_a_judge_that_knows_the_answers_scores_100_percent_and_is_trustworthy(tmp_path):
    metrics, _ = run_audit(tmp_path, knows)
    found = metrics["audit"]
    assert found["items"] == len(ITEMS) and found["accuracy"] == 1.0 and found["order_agreement"] == 1.0
    assert found["low"] > 0.95 and metrics["verdict"] == TRUSTWORTHY and found["by_kind"]["correct_vs_wrong"][
        "accuracy"] == 1.0
    assert found["mean_p_better"] > 0.9 and abs(found["position_bias"]) < 0.01


def test_a_judge_that_always_says_b_scores_50_percent_with_order_agreement_0(tmp_path):
    metrics, _ = run_audit(tmp_path, always_b)
    found = metrics["audit"]
    assert found["accuracy"] == 0.5 and found["order_agreement"] == 0.0 and found["ties"] == len(ITEMS)
    assert found["position_bias"] < -0.4 and metrics["verdict"] == AT_CHANCE
    assert found["low"] < 0.5 < found["high"]


def test_one_order_only_alternates_the_better_slot_so_position_alone_scores_half(tmp_path):
    metrics, engine = run_audit(tmp_path, always_b, debias="none", limit=10)
    found = metrics["audit"]
    assert found["items"] == 10 and found["accuracy"] == 0.5 and found["order_agreement"] is None
    assert sum(len(p) for p, _ in engine.choice_calls) == 10 * 2  # one order, two principles each
    assert judge_verdict(dict(found, accuracy=1.0, low=0.9, high=1.0)).label == WEAK  # no order check, no trust


def test_items_are_judged_under_principles_that_fit_their_kind(tmp_path):
    metrics, engine = run_audit(tmp_path, knows, principles={"harm": TAGGED["harm"]}, limit=6)
    found = metrics["audit"]
    assert set(found["by_kind"]) == {"harmful_vs_safe"} and found["items"] == 6
    assert found["skipped"] == {"helpful_vs_evasive": 21, "correct_vs_wrong": 21}
    rows = [json.loads(line) for line in (tmp_path / "work" / "audit.jsonl").read_text().splitlines()]
    assert all(set(r["principle_ids"]) == {"harm"} for r in rows)
    untagged = {"p": {"text": "Which is better?"}}
    assert audit.fitting("helpful_vs_evasive", untagged) == ["p"]  # a constitution without tags: all principles
    with pytest.raises(CaiError, match="no audit item fits"):
        run_audit(tmp_path / "none", knows, principles={"x": {"text": "?", "tags": ["funny"]}})


def test_the_audit_resumes_and_samples_show_the_wrong_answers_first(tmp_path):
    run_audit(tmp_path, always_b, limit=8, chunk_size=4)
    rows = (tmp_path / "work" / "audit.jsonl").read_text().splitlines()
    (tmp_path / "work" / "audit.jsonl").write_text("\n".join(rows[:4]) + "\n" + rows[4][:30])
    metrics, engine = run_audit(tmp_path, always_b, limit=8, chunk_size=4)
    assert metrics["audit"]["items"] == 8 and sum(len(p) for p, _ in engine.choice_calls) == 4 * 2 * 2
    samples = (tmp_path / "work" / "samples.md").read_text()
    assert "judge audit (8 of 8 items, wrong ones first)" in samples and ": tie, P(better)=0.500" in samples


@pytest.mark.parametrize("row, message", [({"id": "a", "kind": "k", "prompt": "p", "better": "x"}, "worse"),
                                          ({"id": "a", "kind": "k", "prompt": "p", "better": "x", "worse": "x "},
                                           "same text")])
def test_a_malformed_audit_row_names_the_file_and_row(tmp_path, row, message):
    path = tmp_path / "bad.jsonl"
    good = {"id": "g", "kind": "k", "prompt": "p", "better": "x", "worse": "y"}
    path.write_text(json.dumps(good) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(CaiError, match=rf"bad.jsonl row 2: .*{message}"):
        audit.load_items(f"file://{path}", "pipeline.audit.inputs.audit_set")
    path.write_text(json.dumps(good) + "\n" + json.dumps(good) + "\n")
    with pytest.raises(CaiError, match="repeats an earlier row"):
        audit.load_items(f"file://{path}", "x")


def test_verdict_rules_at_their_boundaries():
    def v(low, high=0.9, agreement=0.9, accuracy=0.8):
        return judge_verdict({"items": 30, "accuracy": accuracy, "low": low, "high": high,
                              "order_agreement": agreement, "position_bias": 0.0}, "prefs").label

    assert v(0.5) == AT_CHANCE and v(0.3, 0.45) == AT_CHANCE  # reaching 0.5, or worse than a coin
    assert v(0.51) == WEAK and v(0.8, agreement=0.5) == WEAK and v(0.75, agreement=0.75) == TRUSTWORTHY
    assert judge_verdict(None).label == NOT_AUDITED and judge_verdict({"items": 0}).label == NOT_AUDITED
    verdict = judge_verdict({"items": 24, "accuracy": 0.52, "low": 0.33, "high": 0.7, "order_agreement": 0.0,
                             "position_bias": -0.32}, "prefs")
    assert "order agreement 0.00" in verdict.numbers and "pipeline.prefs.method=cot" in verdict.next_step
    assert verdict.line("prefs").startswith("can the labels of prefs be trusted? AT CHANCE (known-answer accuracy 52%")


def test_downstream_finds_every_node_that_rests_on_a_source():
    parents = {"pairs": ["sft"], "prefs": ["pairs"], "rm": ["prefs", "sft"], "rl": ["rm", "sft", "prefs"],
               "eval": ["sft", "rl"], "sft": []}
    assert downstream(parents, {"prefs"}) == {"rm": ["prefs"], "rl": ["prefs"], "eval": ["prefs"]}
    assert downstream(parents, set()) == {}


def test_the_console_summary_prints_each_verdict_and_flags_rows_resting_on_labels_at_chance(tmp_path):
    from types import SimpleNamespace

    from cai import console
    from cai.graph import Ref

    chance = {"items": 16, "accuracy": 0.5, "low": 0.28, "high": 0.72, "order_agreement": 0.0, "position_bias": -0.3}

    def result(name, kind, inputs, metrics):
        node = SimpleNamespace(name=name, stage=SimpleNamespace(name=kind),
                               inputs={k: Ref("node", v, "x") for k, v in inputs.items()})
        return SimpleNamespace(node=node, status="ran", seconds=1.0, metrics=metrics, path=tmp_path / name)

    results = [result("sft", "sft", {}, {"train_loss": 1.0}),
               result("prefs", "label_preferences", {"pairs": "sft"}, {"comparisons": 4, "audit": chance}),
               result("rm", "reward_model", {"mixture.0": "prefs"}, {"eval_reward_accuracy": 0.5}),
               result("rl", "rl", {"reward": "rm"}, {"final_reward": 0.1})]
    with console.console.capture() as captured:
        console.print_summary(results, tmp_path)
    text = " ".join(captured.get().split())
    assert "can the labels of prefs be trusted? AT CHANCE (known-answer accuracy 50%, 95% CI 28%-72%, n=16" in text
    assert text.count("not evidence: labels of prefs at chance") == 2  # rm and rl, not sft or prefs itself
