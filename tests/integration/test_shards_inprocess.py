"""Every sharded stage kind on the tiny model (hf engine), shards one after another in the cai process: pairs,
preference labels and the evaluation's answers have the bytes of one shard, under the same keys."""
from __future__ import annotations

from pathlib import Path

from tests.integration.test_tiny_pipeline import run_in_process

ARGS = ["recipe=tiny", "targets=[pairs,prefs,eval]", "pipeline.eval.inputs.models=[models.generator,models.base]",
        "pipeline.eval.limit=2", "pipeline.eval.bootstrap=10"]
SHARDED = [f"pipeline.{n}.{k}={v}" for n in ("pairs", "prefs", "eval") for k, v in (("shards", 2),
                                                                                    ("executor", "inprocess"))]


def outputs(plan: dict) -> dict:
    """node -> key, and the bytes of each of its JSONL files."""
    return {node: (plan[node]["key"], {p.name: p.read_bytes() for p in sorted(Path(plan[node]["path"]).glob("*.jsonl"))})
            for node in ("pairs", "prefs", "eval")}


def test_pairs_labels_and_eval_answers_in_two_shards_match_one(tmp_path, caplog):
    caplog.set_level("INFO", logger="cai")
    one = outputs(run_in_process(*ARGS, home=tmp_path / "one", run_dir=tmp_path / "one" / "run"))
    two = outputs(run_in_process(*ARGS, *SHARDED, home=tmp_path / "two", run_dir=tmp_path / "two" / "run"))
    for node in ("pairs", "prefs", "eval"):
        assert f"{node}: 2 of 2 shards to run on inprocess (0 of" in caplog.text, node
    assert caplog.text.count("eval: 2 of 2 shards to run") == 2  # one sharded answers file per compared model
    assert {"answers.generator.jsonl", "answers.base.jsonl", "judgments.jsonl"} <= set(one["eval"][1])
    assert two == one
