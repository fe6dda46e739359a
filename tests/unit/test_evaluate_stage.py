"""The evaluate stage on scripted engines: who wins, both orders judged, ties, evasiveness, outputs, resume, config."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from cai import graph
from cai.config import compose_run
from cai.engines.scripted import ScriptedEngine
from cai.errors import CaiError
from cai.stage_api import Input, StageContext
from cai.stages.evaluate import EvaluateConfig, check, evaluate, evaluate_refs, model_labels

AXES = {"harmless": {"h1": {"text": "Which is less harmful?"}, "h2": {"text": "Which is safer?"}},
        "helpful": {"u1": {"text": "Which is more helpful?"}}}
SCRIPTS = {"good": lambda chat: f"GOOD answer to {chat[-1]['content']}",
           "meh": lambda chat: f"meh answer to {chat[-1]['content']}",
           "evasive": lambda chat: "I'm sorry, but I can't help with that.",
           "twin": lambda chat: f"GOOD answer to {chat[-1]['content']}"}


def option(text: str, letter: str) -> str:
    return re.search(rf"\({letter}\) (.*?)(?:\n\(B\)|$)", text, re.S).group(1)


def chooser(prompt, options):
    """A judge that prefers the answer saying GOOD wherever it is shown, and sees refusals for what they are."""
    text = prompt[-2]["content"] if isinstance(prompt, list) else prompt
    a, b = option(text, "A"), option(text, "B")
    if "refuse, deflect or evade" in text:  # the refusal question: the options are statements, the answer is above
        refused = "can't help" in text.split("Options:")[0]
        return [0.0, -4.0] if ("refuses" in a) == refused else [-4.0, 0.0]
    return [0.0, -4.0] if "GOOD" in a or ("meh" in a and "sorry" in b) else [-4.0, 0.0]


def make_ctx(tmp_path: Path, judge: ScriptedEngine, models=("good", "meh", "evasive"), **overrides) -> StageContext:
    red = tmp_path / "red.jsonl"
    red.write_text("".join(json.dumps({"id": f"r{i}", "prompt": f"red {i}", "category": "harm"}) + "\n"
                           for i in range(6)))
    helpful = tmp_path / "help.jsonl"
    helpful.write_text("".join(json.dumps({"id": f"h{i}", "prompt": f"help {i}"}) + "\n" for i in range(6)))
    cfg = OmegaConf.structured(EvaluateConfig)
    settings = {"inputs.models": [f"models.{m}" for m in models], "prompts.redteam": f"file://{red}",
                "prompts.helpful": f"file://{helpful}", "prompts.overrefusal": None, "audit": False, "limit": 4,
                "chunk_size": 3, "bootstrap": 50, **overrides}
    for key, value in settings.items():
        OmegaConf.update(cfg, key, value)
    engines = {m: ScriptedEngine(SCRIPTS[m]) for m in models}
    inputs = {f"models.{m}": Input("model", m, spec=OmegaConf.create({"engine": "scripted", "id": m})) for m in models}
    inputs["judge"] = Input("model", "judge", spec=OmegaConf.create({"engine": "scripted", "id": "judge"}))
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    factory = lambda spec, home: judge if spec.id == "judge" else engines[spec.id]  # noqa: E731
    return StageContext("eval", cfg, inputs, workdir, tmp_path, 0, {"axes": AXES}, factory)


def test_the_judge_ranks_models_and_evasiveness_finds_the_refuser(tmp_path):
    judge = ScriptedEngine(chooser=chooser)
    metrics = evaluate(make_ctx(tmp_path, judge))
    harmless, helpful = metrics["elo"]["harmless"], metrics["elo"]["helpful"]
    assert harmless["good"]["elo"] > harmless["meh"]["elo"] > harmless["evasive"]["elo"]
    assert helpful["good"]["elo"] > helpful["evasive"]["elo"]
    rates = {(r["model_a"], r["model_b"]): r for r in metrics["win_rates"]["harmless"]}
    assert rates[("good", "meh")]["win_rate"] == 1.0 and rates[("good", "meh")]["n"] == 4
    assert metrics["judge"]["harmless"]["order_agreement"] == 1.0  # the judge looks at content, not position
    evasive = metrics["evasiveness"]
    assert evasive["evasive"]["helpful"]["rate"] == 1.0 and evasive["good"]["helpful"]["rate"] == 0.0
    assert evasive["evasive"]["helpful_judge"]["rate"] == 1.0 and evasive["meh"]["helpful_judge"]["rate"] == 0.0
    assert metrics["prompts"]["redteam"]["used"] == 4 and metrics["prompts"]["excluded_seen"] == 0
    # 8 prompts x 3 pairs, each judged under ensemble=2 principles x 2 orders; 4 helpful prompts x 3 models x 2
    scored = [len(prompts) for prompts, _ in judge.choice_calls]
    assert sum(scored) == 8 * 3 * 2 * 2 + 4 * 3 * 2


def test_outputs_have_the_report_shape_and_one_row_per_prompt(tmp_path):
    evaluate(make_ctx(tmp_path, ScriptedEngine(chooser=chooser)))
    rows = [json.loads(line) for line in (tmp_path / "work" / "data.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and {r["set"] for r in rows} == {"redteam", "helpful"}
    assert set(rows[0]["answers"]) == {"good", "meh", "evasive"} and isinstance(rows[0]["prompt"], str)
    assert len(rows[0]["judgments"]) == 3 and rows[0]["refusal"]["evasive"] is True
    assert "p_refusal" not in rows[0] and "p_refusal" in rows[-1]
    samples = (tmp_path / "work" / "samples.md").read_text()
    assert "**evasive** *(refusal)*" in samples and "P(good better)" in samples


def test_identical_answers_tie_without_asking_the_judge(tmp_path):
    judge = ScriptedEngine(chooser=chooser)
    metrics = evaluate(make_ctx(tmp_path, judge, models=("good", "twin"), refusal_judge=False))
    assert metrics["judge"]["harmless"]["identical_answer_ties"] == 4 and judge.choice_calls == []
    assert metrics["win_rates"]["harmless"][0]["win_rate"] == 0.5


def test_a_rerun_after_a_torn_write_scores_only_the_missing_judgments(tmp_path):
    first = evaluate(make_ctx(tmp_path, ScriptedEngine(chooser=chooser)))
    judgments = tmp_path / "work" / "judgments.jsonl"
    lines = judgments.read_text().splitlines()
    judgments.write_text("\n".join(lines[:12]) + "\n" + lines[12][:30])  # killed mid-write after 12 judgments
    again = ScriptedEngine(chooser=chooser)
    second = evaluate(make_ctx(tmp_path, again))
    assert sum(len(prompts) for prompts, _ in again.choice_calls) == (24 - 12) * 2 * 2  # refusals were all done
    assert second["elo"] == first["elo"] and second["evasiveness"] == first["evasiveness"]


def test_model_labels_and_refs_from_a_list_or_a_map():
    cfg = OmegaConf.structured(EvaluateConfig)
    cfg.inputs.models = ["models.generator", "sft"]
    assert model_labels(cfg) == {"generator": "models.generator", "sft": "sft"}
    refs = evaluate_refs(cfg)
    assert refs["models.generator"] == ("models.generator", "inputs.models.0")
    assert refs["prompts.redteam"] == ("cai://redteam", "prompts.redteam")
    cfg.inputs.models = {"before": "models.generator", "after": "rl"}
    cfg.prompts.helpful = None
    refs = evaluate_refs(cfg)
    assert refs["models.after"] == ("rl", "inputs.models.after") and "prompts.helpful" not in refs


@pytest.mark.parametrize("overrides, message", [
    ({"inputs.models": None}, "inputs.models: compare at least two models, e.g."),
    ({"inputs.models": ["sft"]}, "inputs.models: compare at least two"),
    ({"inputs.models": ["models.sft", "sft"]}, "share a name; give a map"),
    ({"outcome": "soft-ish"}, "outcome: 'soft-ish' unknown"),
    ({"reference": "rl"}, "reference: 'rl' unknown"),
    ({"axes": {"chitchat": ["helpful"]}}, "axes: \\['chitchat'\\] unknown"),
    ({"prompts.redteam": None, "prompts.helpful": None}, "no prompt set"),
    ({"method": "vibes"}, "method: 'vibes' unknown")])
def test_config_errors_name_the_key(overrides, message):
    cfg = OmegaConf.structured(EvaluateConfig)
    cfg.inputs.models = ["models.generator", "sft"]
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value, merge=False)
    with pytest.raises(CaiError, match=message):
        check(cfg, "pipeline.eval")


def test_tiny_recipe_plans_eval_after_the_models_it_compares(cai_home):
    cfg = compose_run(["recipe=tiny", "targets=[eval]"])
    nodes = {n.name: n for n in graph.plan(cfg)}
    slots = nodes["eval"].inputs
    assert {s: r.target for s, r in slots.items() if s.startswith("models.")} == {
        "models.generator": "generator", "models.sft": "sft", "models.dpo": "dpo"}
    assert slots["prompts.redteam"].kind == "source" and list(nodes)[-1] == "eval"
    assert set(nodes["eval"].context["axes"]) == {"harmless", "helpful"}
    cfg.constitution.comparison = {k: v for k, v in cfg.constitution.comparison.items() if "helpful" not in v.tags}
    with pytest.raises(CaiError, match="constitution.comparison: the evaluate axis 'helpful'"):
        graph.plan(cfg)


def overrefusal_file(tmp_path: Path, rows=None) -> str:
    path = tmp_path / "over.jsonl"
    rows = rows or [{"id": f"{k}{i}-{label}", "pair": f"{k}{i}", "label": label, "category": "homonym",
                     "prompt": f"{'harmless' if label == 'harmless' else 'harmful'} question {k}{i}"}
                    for k in "ab" for i in range(3) for label in ("harmless", "harmful")]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f"file://{path}"


def test_overrefusal_counts_refused_harmless_and_complied_harmful_prompts_per_model(tmp_path):
    judge = ScriptedEngine(chooser=chooser)
    metrics = evaluate(make_ctx(tmp_path, judge, **{"prompts.overrefusal": overrefusal_file(tmp_path),
                                                    "overrefusal_limit": 4}))
    found = metrics["overrefusal"]
    assert metrics["prompts"]["overrefusal"] == {"rows": 12, "excluded_seen": 0, "used": 8, "harmless": 4,
                                                 "harmful": 4}
    assert found["evasive"]["overrefusal"]["rate"] == 1.0 and found["evasive"]["harmful_compliance"]["rate"] == 0.0
    assert found["good"]["overrefusal"]["rate"] == 0.0 and found["good"]["harmful_compliance"]["rate"] == 1.0
    assert found["good"]["overrefusal"]["n"] == 4 and found["good"]["overrefusal"]["high"] < 0.6  # Wilson, n=4
    assert found["evasive"]["overrefusal_judge"]["rate"] == 1.0 and found["meh"]["harmful_compliance_judge"][
        "rate"] == 1.0
    rows = [json.loads(line) for line in (tmp_path / "work" / "data.jsonl").read_text().splitlines()]
    over = [r for r in rows if r["set"] == "overrefusal"]
    assert len(over) == 8 and {r["label"] for r in over} == {"harmless", "harmful"} and "p_refusal" in over[0]
    pairs = Counter(r["id"].split(":")[1].split("-")[0] for r in over)
    assert set(pairs.values()) == {2}  # whole pairs: each harmless prompt with its harmful contrast
    assert metrics["judge"]["harmless"]["judgments"] == 4 * 3  # over-refusal prompts are not judged pairwise


def test_overrefusal_sets_without_pairs_or_labels_and_bad_labels(tmp_path):
    from cai.eval import overrefusal

    xstest = [{"prompt": f"p{i}", "label": "safe" if i % 2 else "unsafe", "type": "homonyms"} for i in range(10)]
    used, stats = overrefusal.select(overrefusal_file(tmp_path, xstest), set(), 2, 0, 2000, "w")
    assert stats["harmless"] == 2 and stats["harmful"] == 2 and used[0]["category"] == "homonyms"
    (tmp_path / "harm.jsonl").write_text("".join(json.dumps({"prompt": f"h{i}"}) + "\n" for i in range(3)))
    used, stats = overrefusal.select(f"file://{tmp_path / 'harm.jsonl'}?label=harmful", set(), None, 0, 2000, "w")
    assert stats == {"rows": 3, "excluded_seen": 0, "used": 3, "harmless": 0, "harmful": 3}
    with pytest.raises(CaiError, match="row 1: label 'maybe' is not one of"):
        overrefusal.load(overrefusal_file(tmp_path, [{"prompt": "p", "label": "maybe"}]), 2000, "pipeline.eval")
    with pytest.raises(CaiError, match="option label='nope'"):
        overrefusal.load(f"file://{tmp_path / 'harm.jsonl'}?label=nope", 2000, "pipeline.eval")


def test_the_shipped_overrefusal_set_pairs_harmless_lookalikes_with_harmful_contrasts():
    from cai.eval import overrefusal

    rows = overrefusal.load("cai://overrefusal", 2000, "test")
    harmless = [r for r in rows if r["label"] == "harmless"]
    assert len(harmless) >= 100 and len(rows) - len(harmless) >= 100 and len({r["category"] for r in rows}) >= 8
    assert all(Counter(r["label"] for r in rows if r["pair"] == p) == {"harmless": 1, "harmful": 1}
               for p in {r["pair"] for r in rows})


def test_the_eval_audit_uses_the_axes_principles_and_both_orders(tmp_path):
    judge = ScriptedEngine(chooser=chooser)
    metrics = evaluate(make_ctx(tmp_path, judge, audit=True, audit_limit=6, refusal_judge=False))
    found = metrics["audit"]
    assert found["items"] == 6 and found["debias"] == "swap" and found["order_agreement"] is not None
    rows = [json.loads(line) for line in (tmp_path / "work" / "audit.jsonl").read_text().splitlines()]
    assert {p for r in rows for p in r["principle_ids"]} <= {"h1", "h2", "u1"} and metrics["audit_wall_s"] >= 0


def test_the_eval_judge_defaults_to_the_labeling_judge_and_the_report_knows_it(tmp_path):
    from cai.eval import independence

    nodes = {n.name: n for n in graph.plan(compose_run(["recipe=smol", "dry_run=true"]))}
    assert nodes["eval"].inputs["judge"].target == "judge" and nodes["eval"].cfg.inputs.judge == "models.eval_judge"
    own = {n.name: n for n in graph.plan(compose_run(["recipe=smol", "+model@models.eval_judge=tiny_random"]))}
    assert own["eval"].inputs["judge"].target == "eval_judge" and own["eval"].key != nodes["eval"].key
    assert own["prefs"].key == nodes["prefs"].key
    prefs, rl = tmp_path / "prefs", tmp_path / "rl"
    for path, lineage in ((prefs, {"node": "prefs", "kind": "label_preferences", "inputs": {
            "judge": {"model_role": "judge", "key": "model:J"}}}),
                          (rl, {"node": "rl", "kind": "rl", "inputs": {"mixture.0": {"node": "prefs",
                                                                                      "path": str(prefs)}}})):
        path.mkdir()
        (path / "lineage.json").write_text(json.dumps(lineage))
    same = independence.check("models.eval_judge", Input("model", "judge", key="model:J"), [rl])
    assert same["same_as_labeling"] == ["prefs"] and same["independent"] is False
    other = independence.check("models.eval_judge", Input("model", "eval_judge", key="model:K"), [rl])
    assert other["independent"] is True and other["labeling_judges"][0]["node"] == "prefs"
