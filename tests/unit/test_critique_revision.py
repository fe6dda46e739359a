"""The critique_revision stage on the scripted engine: records, few-shot prefix, resume, skipped rows."""
from __future__ import annotations

import json
from pathlib import Path

from omegaconf import OmegaConf

from cai.engines.scripted import ScriptedEngine
from cai.stage_api import Input, StageContext
from cai.stages.critique_revision import CritiqueRevisionConfig, critique_revision

PRINCIPLES = {"p1": {"critique": "Critique it (p1).", "revision": "Revise it (p1).", "weight": 1.0, "tags": []},
              "p2": {"critique": "Critique it (p2).", "revision": "Revise it (p2).", "weight": 1.0, "tags": []}}
EXEMPLAR = {"ex": {"messages": [{"role": "user", "content": "example prompt"},
                                {"role": "assistant", "content": "example answer"}]}}


def make_ctx(tmp_path: Path, prompts_file: Path, engine, **overrides) -> StageContext:
    cfg = OmegaConf.structured(CritiqueRevisionConfig)
    cfg.inputs.prompts = f"file://{prompts_file}"
    cfg.chunk_size = 2
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value)
    workdir = tmp_path / "work"
    workdir.mkdir(exist_ok=True)
    inputs = {"generator": Input("model", "generator", spec=OmegaConf.create({"engine": "scripted"}))}
    context = {"constitution": "test", "principles": PRINCIPLES, "exemplars": EXEMPLAR if cfg.fewshot else {}}
    return StageContext("sl_data", cfg, inputs, workdir, tmp_path, 0, context, lambda spec, home: engine)


def write_prompts(path: Path, rows) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_records_rounds_and_fewshot(tmp_path):
    prompts = write_prompts(tmp_path / "p.jsonl", [{"prompt": f"question {i}"} for i in range(5)])
    engine = ScriptedEngine(lambda chat: "Sure, here is a revised response: ok" if "Revise" in chat[-1]["content"]
                            else "an answer")
    metrics = critique_revision(make_ctx(tmp_path, prompts, engine, revisions=2))
    rows = [json.loads(line) for line in (tmp_path / "work" / "data.jsonl").read_text().splitlines()]
    assert metrics["records"] == 5 and len({r["id"] for r in rows}) == 5
    assert all(len(r["rounds"]) == 2 and r["final"] == "ok" for r in rows)
    assert all(r["rounds"][0]["principle_id"] in PRINCIPLES for r in rows)
    first_chat = engine.calls[0][0]
    assert first_chat[0]["content"] == "example prompt" and first_chat[-1]["content"] == "question 0"
    assert (tmp_path / "work" / "hf").is_dir() and (tmp_path / "work" / "samples.md").is_file()


def test_hf_export_has_the_cai_conversation_harmless_columns(tmp_path):
    from datasets import load_from_disk

    prompts = write_prompts(tmp_path / "p.jsonl", [{"prompt": "question"}])
    critique_revision(make_ctx(tmp_path, prompts, ScriptedEngine()))
    dataset = load_from_disk(str(tmp_path / "work" / "hf"))
    expected = {"init_prompt", "init_response", "critic_prompt", "critic_response", "revision_prompt",
                "revision_response", "prompt", "messages", "chosen", "rejected", "principle_ids"}
    assert expected <= set(dataset.column_names)
    assert dataset[0]["messages"][1]["role"] == "assistant"


def test_bad_rows_are_counted_not_fatal(tmp_path):
    rows = [{"prompt": "ok one"}, {"prompt": ""}, {"prompt": "ok one"}, {"prompt": 7}, "", {"prompt": "x" * 50}]
    prompts = write_prompts(tmp_path / "p.jsonl", rows)
    metrics = critique_revision(make_ctx(tmp_path, prompts, ScriptedEngine(), max_prompt_chars=10))
    assert metrics["records"] == 2
    assert metrics["source"] == {"rows": 6, "blank": 2, "duplicate": 1, "not_text": 1, "truncated": 1, "used": 2}


def test_resume_generates_only_what_is_missing(tmp_path):
    prompts = write_prompts(tmp_path / "p.jsonl", [{"prompt": f"q{i}"} for i in range(4)])
    first = ScriptedEngine()
    critique_revision(make_ctx(tmp_path, prompts, first))
    data = tmp_path / "work" / "data.jsonl"
    lines = data.read_text().splitlines()
    data.write_text("\n".join(lines[:2]) + "\n" + lines[2][:15])  # two done, then a torn write
    second = ScriptedEngine()
    critique_revision(make_ctx(tmp_path, prompts, second))
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == sorted(json.loads(line)["id"] for line in lines)
    assert sum(len(call) for call in second.calls) == 2 * 3  # 2 prompts x (answer, critique, revision)
    assert rows == [json.loads(line) for line in lines]  # same seeds, same text


def test_each_round_critiques_and_revises_the_latest_revision(tmp_path):
    """Sec. 3.1: revision n+1 is asked of revision n, not of the initial answer; every turn sees the whole dialogue."""
    prompts = write_prompts(tmp_path / "p.jsonl", [{"prompt": "question"}])

    def script(chat):
        request = chat[-1]["content"]
        turns = sum(1 for m in chat if m["role"] == "assistant" and m["content"].startswith("revision"))
        if request.startswith("Critique"):
            return f"critique of [{chat[-2]['content']}]"
        return f"revision {turns + 1}" if request.startswith("Revise") else "initial answer"

    engine = ScriptedEngine(script, chat_template=True)
    critique_revision(make_ctx(tmp_path, prompts, engine, revisions=3, fewshot=False))
    row = json.loads((tmp_path / "work" / "data.jsonl").read_text())
    assert [r["critique"] for r in row["rounds"]] == ["critique of [initial answer]", "critique of [revision 1]",
                                                      "critique of [revision 2]"]
    assert [r["revision"] for r in row["rounds"]] == ["revision 1", "revision 2", "revision 3"]
    assert row["final"] == "revision 3"
    last = engine.calls[-1][0]  # the third revision request, after the whole dialogue so far
    assert [m["content"] for m in last if m["role"] == "assistant"] == [
        "initial answer", "critique of [initial answer]", "revision 1", "critique of [revision 1]", "revision 2",
        "critique of [revision 2]"]


def test_seeds_are_per_example_and_turn(tmp_path):
    from cai.keys import example_seed

    prompts = write_prompts(tmp_path / "p.jsonl", [{"id": f"q{i}", "prompt": f"question {i}"} for i in range(3)])
    engine = ScriptedEngine()
    critique_revision(make_ctx(tmp_path, prompts, engine, revisions=1, fewshot=False, chunk_size=2))
    turns = ["initial", "c0", "r0"]
    expected = [[example_seed(0, f"q{i}", turn) for i in ids] for ids in ([0, 1], [2]) for turn in turns]
    assert engine.seeds == expected
    first_example = [call[0] for call in engine.seeds[:3]]  # q0's answer, critique and revision turns
    assert len(set(first_example)) == 3 and len({s for call in engine.seeds for s in call}) == 9
