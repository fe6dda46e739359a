"""sample_pairs, label_preferences and feedback_accuracy on the scripted engine: records, switches, resume, errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from cai.engines.scripted import ScriptedEngine
from cai.errors import CaiError
from cai.stage_api import Input, StageContext
from cai.stages.feedback_accuracy import FeedbackAccuracyConfig, feedback_accuracy, load_rows
from cai.stages.label_preferences import LabelPreferencesConfig, comparisons, label_preferences
from cai.stages.sample_pairs import SamplePairsConfig, check, sample_pairs

PRINCIPLES = {"p1": {"text": "Which is safer?", "weight": 1.0, "tags": []},
              "p2": {"text": "Which is kinder?", "weight": 1.0, "tags": []}}
LABELING = {"lab": {"conversation": [{"role": "user", "content": "Capital?"}], "better": "Canberra.",
                    "worse": "Sydney.", "principle": None}}
MODEL = Input("model", "m", spec=OmegaConf.create({"engine": "scripted"}))


def make_ctx(tmp_path: Path, schema, engine, inputs, context=None, **overrides) -> StageContext:
    cfg = OmegaConf.structured(schema)
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value)
    workdir = tmp_path / "work"
    workdir.mkdir(parents=True, exist_ok=True)
    return StageContext("node", cfg, inputs, workdir, tmp_path, 0, context or {}, lambda spec, home: engine)


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_sample_pairs_mixes_sources_by_weight_with_one_temperature_per_response(tmp_path):
    red = write_jsonl(tmp_path / "red.jsonl", [{"prompt": f"red {i}"} for i in range(10)])
    helpful = write_jsonl(tmp_path / "help.jsonl", [{"prompt": f"help {i}"} for i in range(10)])
    engine = ScriptedEngine(lambda chat: f"answer to {chat[-1]['content']}")
    parts = [{"source": f"file://{red}", "weight": 3.0}, {"source": f"file://{helpful}", "weight": 1.0}]
    inputs = {"policy": MODEL}
    ctx = make_ctx(tmp_path, SamplePairsConfig, engine, inputs, prompts=parts, limit=8, k=3,
                   temperatures=[0.0, 0.7, 1.0], chunk_size=3)
    metrics = sample_pairs(ctx)
    rows = [json.loads(line) for line in (tmp_path / "work" / "data.jsonl").read_text().splitlines()]
    assert metrics["records"] == 8 and [s["used"] for s in metrics["sources"]] == [6, 2]
    assert all(len(r["responses"]) == 3 and r["prompt"][0]["role"] == "user" for r in rows)
    assert rows[0]["temperatures"] == [0.0, 0.7, 1.0] and rows[0]["source"] == f"file://{red}"
    assert len(engine.calls) == 3 * 3  # 3 chunks x one call per response slot


def test_sample_pairs_without_limit_takes_what_the_weights_allow_and_resumes(tmp_path):
    red = write_jsonl(tmp_path / "red.jsonl", [{"prompt": f"red {i}"} for i in range(10)])
    helpful = write_jsonl(tmp_path / "help.jsonl", [{"prompt": f"help {i}"} for i in range(4)])
    parts = [{"source": f"file://{red}", "weight": 1.0}, {"source": f"file://{helpful}", "weight": 1.0}]
    first = ScriptedEngine()
    sample_pairs(make_ctx(tmp_path, SamplePairsConfig, first, {"policy": MODEL}, prompts=parts, chunk_size=2))
    data = tmp_path / "work" / "data.jsonl"
    lines = data.read_text().splitlines()
    assert len(lines) == 8  # 4 + 4: helpful runs out first at a 1:1 mix
    data.write_text("\n".join(lines[:4]) + "\n" + lines[4][:20])  # a torn write after two chunks
    second = ScriptedEngine()
    sample_pairs(make_ctx(tmp_path, SamplePairsConfig, second, {"policy": MODEL}, prompts=parts, chunk_size=2))
    assert [json.loads(line) for line in data.read_text().splitlines()] == [json.loads(line) for line in lines]
    assert sum(len(call) for call in second.calls) == 4 * 2  # only the 4 missing prompts, 2 responses each


@pytest.mark.parametrize("overrides, message", [({"k": 1}, "k: need at least 2"),
                                                ({"temperatures": [0.7]}, "one per response"),
                                                ({"prompts": []}, "prompts: empty"),
                                                ({"sampling.do_sample": False}, "identical")])
def test_sample_pairs_config_errors_name_the_key(overrides, message):
    cfg = OmegaConf.structured(SamplePairsConfig)
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value)
    with pytest.raises(CaiError, match=message):
        check(cfg, "pipeline.pairs")


def test_every_prompt_source_is_a_checked_and_keyed_graph_input():
    from cai import graph
    from cai.config import compose_run

    def pairs_node(*overrides):
        return next(n for n in graph.plan(compose_run(["recipe=tiny", *overrides])) if n.name == "pairs")

    node = pairs_node()
    assert {s: r.target for s, r in node.inputs.items() if s.startswith("prompts")} == {
        "prompts.0": "cai://redteam", "prompts.1": "cai://helpful"}
    assert pairs_node("pipeline.pairs.prompts.1.weight=3.0").key != node.key
    with pytest.raises(CaiError, match="pipeline.pairs.prompts.1.source"):
        pairs_node("pipeline.pairs.prompts.1.source=no_such_node")
    with pytest.raises(CaiError, match="pipeline.pairs.k"):
        pairs_node("pipeline.pairs.k=1")


def pairs_input(tmp_path: Path, records) -> Input:
    folder = tmp_path / "pairs"
    folder.mkdir(exist_ok=True)
    write_jsonl(folder / "data.jsonl", records)
    return Input("node", "pairs", path=folder)


def prefer_good(prompt, options):
    """A judge that prefers the option whose response mentions 'good', in whichever slot it sits."""
    text = prompt if isinstance(prompt, str) else prompt[-1]["content"] if prompt[-1]["role"] == "user" else \
        prompt[-2]["content"]
    a = text.rsplit("(A) ", 1)[1].split("\n(B) ")[0]
    return [-0.1, -2.4] if "good" in a else [-2.4, -0.1]


PAIRS = [{"id": "q1", "prompt": [{"role": "user", "content": "Help?"}], "responses": ["bad one", "good one", "bad one"],
          "category": "", "source": "cai://redteam"}]


def test_labels_follow_the_judge_across_orders_principles_and_pairings(tmp_path):
    engine = ScriptedEngine(chooser=prefer_good)
    context = {"principles": PRINCIPLES, "labeling": LABELING, "exemplar_principles": {}}
    inputs = {"pairs": pairs_input(tmp_path, PAIRS), "judge": MODEL}
    metrics = label_preferences(make_ctx(tmp_path, LabelPreferencesConfig, engine, inputs, context, ensemble=2))
    rows = [json.loads(line) for line in (tmp_path / "work" / "data.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["q1:0-1", "q1:1-2"] and metrics["skipped_identical_pairs"] == 1
    assert all(r["chosen"] == "good one" and r["p_chosen"] > 0.85 for r in rows)
    assert all(len(r["orders"]) == 4 and sorted(set(r["principle_ids"])) == ["p1", "p2"] for r in rows)
    assert metrics["order_agreement"] == 1.0 and abs(metrics["position_bias"]) < 1e-9
    prompts, options = engine.choice_calls[0]
    assert options[0] == ["A", "B"] and prompts[0][0]["content"].endswith("(A) Canberra.\n(B) Sydney.")
    from datasets import load_from_disk

    dataset = load_from_disk(str(tmp_path / "work" / "hf"))
    assert dataset[0]["chosen"] == [{"role": "assistant", "content": "good one"}] and "p_chosen" in dataset.column_names
    assert comparisons(PAIRS, "adjacent")[0][0]["id"] == "q1:0-1"


def test_principles_are_distinct_while_they_last_and_identical_pairs_are_an_error(tmp_path):
    from cai.keys import stable_rng
    from cai.constitution import pick_principles

    assert sorted(pick_principles(PRINCIPLES, 2, stable_rng(0, "x"))) == ["p1", "p2"]
    assert len(pick_principles(PRINCIPLES, 5, stable_rng(0, "x"))) == 5
    same = [dict(PAIRS[0], responses=["same", "same "])]
    inputs = {"pairs": pairs_input(tmp_path, same), "judge": MODEL}
    with pytest.raises(CaiError, match="no response pairs"):
        label_preferences(make_ctx(tmp_path, LabelPreferencesConfig, ScriptedEngine(), inputs,
                                   {"principles": PRINCIPLES}))


def test_raw_format_and_no_swap_score_one_plain_text_order(tmp_path):
    engine = ScriptedEngine(chooser=prefer_good)
    inputs = {"pairs": pairs_input(tmp_path, PAIRS[:1]), "judge": MODEL}
    label_preferences(make_ctx(tmp_path, LabelPreferencesConfig, engine, inputs, {"principles": PRINCIPLES},
                               debias="none", format="raw", pairing="adjacent", fewshot=False, ensemble=1))
    prompts, _ = engine.choice_calls[0]
    assert len(prompts) == 2 and all(isinstance(p, str) and p.endswith("The answer is: (") for p in prompts)


def test_cot_reasons_first_then_clamps(tmp_path):
    engine = ScriptedEngine(script=lambda chat: "The good one is safer.\n\nThe answer is: (A)", chooser=prefer_good)
    inputs = {"pairs": pairs_input(tmp_path, PAIRS[:1]), "judge": MODEL}
    metrics = label_preferences(make_ctx(tmp_path, LabelPreferencesConfig, engine, inputs,
                                         {"principles": PRINCIPLES, "cot": {}}, method="cot", pairing="adjacent"))
    row = json.loads((tmp_path / "work" / "data.jsonl").read_text().splitlines()[0])
    assert row["p_chosen"] == 0.6 and row["clamped"] and metrics["fraction_clamped"] == 1.0
    assert row["orders"][0]["reasoning"] == "The good one is safer."
    scored = engine.choice_calls[0][0][0]
    assert scored[-1]["content"] == "The good one is safer.\n\nThe answer is: ("
    assert engine.calls[0][0][-1]["content"].endswith("Let's think step by step:")


def test_constitution_context_keys_exactly_what_is_read():
    from cai.config import compose_run
    from cai.stages.label_preferences import constitution_context

    cfg = compose_run(["recipe=smol", "constitution.comparison_select=[cmp_harmless_general]"])
    ctx = constitution_context(cfg, cfg.pipeline.prefs)
    assert list(ctx["principles"]) == ["cmp_harmless_general"] and "labeling" in ctx and "cot" not in ctx
    assert set(ctx["exemplar_principles"]) <= set(cfg.constitution.comparison)
    cfg.pipeline.prefs.fewshot = False
    assert set(constitution_context(cfg, cfg.pipeline.prefs)) == {"constitution", "principles"}
    cfg.pipeline.prefs.fewshot = True
    cfg.constitution.fewshot.labeling.lab_coworker_credit.principle = "nope"
    with pytest.raises(CaiError, match="nope"):
        constitution_context(cfg, cfg.pipeline.prefs)


HHH = [{"prompt": "\n\nQ1? Options:\n (A) x\n (B) y\n\nThe answer is:", "corrects": [" (B)"], "incorrects": [" (A)"]},
       {"prompt": "\n\nQ2? Options:\n (A) x\n (B) y\n\nThe answer is:", "corrects": [" (A)"], "incorrects": [" (B)"]}]


def test_feedback_accuracy_scores_each_rows_options(tmp_path):
    evals = write_jsonl(tmp_path / "hhh.jsonl", HHH)
    engine = ScriptedEngine(chooser=lambda prompt, options: [-0.2 if o == " (B)" else -1.8 for o in options])
    inputs = {"evals": Input("source", f"file://{evals}"), "model": MODEL}
    metrics = feedback_accuracy(make_ctx(tmp_path, FeedbackAccuracyConfig, engine, inputs,
                                         **{"inputs.evals": f"file://{evals}"}))
    assert metrics["rows"] == 2 and metrics["accuracy"] == 0.5
    assert metrics["mean_p_correct"] == pytest.approx(0.5)
    assert len(metrics["reliability"]) == 10 and metrics["ece"] == pytest.approx(abs(0.5 - 0.8320), abs=1e-3)
    prompts, options = engine.choice_calls[0]
    assert prompts[0] == HHH[0]["prompt"] and options[0] == [" (B)", " (A)"]


@pytest.mark.parametrize("row, message", [
    ('{"prompt": "Q", "corrects": [" (A)"]}', "row 2: `incorrects` must be a non-empty list"),
    ('{"prompt": "", "corrects": ["a"], "incorrects": ["b"]}', "row 2: `prompt` must be a non-empty string"),
    ('["not", "an", "object"]', "row 2: expected a JSON object"),
    ('{"prompt": "Q", "corrects": ["a"], "incorrects": ["a"]}', "row 2: an answer appears twice"),
    ('{"prompt": "Q", "corrects": [', "hhh.jsonl:2: not valid JSON")])
def test_malformed_eval_rows_name_the_file_and_row(tmp_path, row, message):
    evals = write_jsonl(tmp_path / "hhh.jsonl", [HHH[0], row])
    with pytest.raises(CaiError, match="hhh.jsonl") as error:
        load_rows(f"file://{evals}")
    assert message in str(error.value)


def test_label_preferences_audits_its_judge_with_its_own_switches_unless_told_not_to(tmp_path):
    engine = ScriptedEngine(chooser=prefer_good)
    inputs = {"pairs": pairs_input(tmp_path, PAIRS), "judge": MODEL}
    metrics = label_preferences(make_ctx(tmp_path, LabelPreferencesConfig, engine, inputs,
                                         {"principles": PRINCIPLES}, ensemble=2, audit_limit=6, fewshot=False))
    found = metrics["audit"]
    assert found["items"] == 6 and found["ensemble"] == 2 and found["debias"] == "swap" and metrics["audit_wall_s"] >= 0
    rows = [json.loads(line) for line in (tmp_path / "work" / "audit.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(len(r["orders"]) == 4 for r in rows) and rows[0]["id"].startswith("audit:")
    assert len(engine.choice_calls) == 2  # the labels, then the audit: one chunk each
    quiet = ScriptedEngine(chooser=prefer_good)
    metrics = label_preferences(make_ctx(tmp_path / "b", LabelPreferencesConfig, quiet, {
        "pairs": pairs_input(tmp_path, PAIRS), "judge": MODEL}, {"principles": PRINCIPLES}, audit=False))
    assert "audit" not in metrics and len(quiet.choice_calls) == 1


def test_the_audit_set_is_a_keyed_input_and_its_limit_is_checked():
    from cai import graph
    from cai.config import compose_run

    def prefs(*overrides):
        return next(n for n in graph.plan(compose_run(["recipe=tiny", *overrides])) if n.name == "prefs")

    node = prefs()
    assert node.inputs["audit"].target == "cai://judge_audit" and node.inputs["audit"].kind == "source"
    assert "audit" not in prefs("pipeline.prefs.audit=false").inputs
    assert prefs("pipeline.prefs.audit_limit=8").key != node.key
    with pytest.raises(CaiError, match="pipeline.prefs.audit_limit: must be >= 1"):
        prefs("pipeline.prefs.audit_limit=0")
    with pytest.raises(CaiError, match="shipped sets: .*cai://judge_audit, cai://overrefusal"):
        prefs("pipeline.prefs.audit_set=cai://nope")
