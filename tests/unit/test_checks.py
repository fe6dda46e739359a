"""Plan-time checks of user-caused errors: each fails before anything runs, naming the key, file or source."""
from __future__ import annotations

import pytest
from cai import graph, sources
from cai.config import compose_run
from cai.errors import CaiError
from cai.runner import execute
from cai.store import Store

BAD_OVERRIDES = [
    ("pipeline.helpful.sampling.max_new_tokens=0", "pipeline.helpful.sampling.max_new_tokens: must be >= 1"),
    ("pipeline.helpful.sampling.temperature=-1", "pipeline.helpful.sampling.temperature: must be > 0"),
    ("pipeline.helpful.sampling.top_k=-1", "pipeline.helpful.sampling.top_k: must be >= 0"),
    ("pipeline.helpful.sampling.top_p=5", "pipeline.helpful.sampling.top_p: must be in (0, 1]"),
    ("pipeline.helpful.limit=0", "pipeline.helpful.limit: must be >= 1, or null"),
    ("pipeline.helpful.chunk_size=0", "pipeline.helpful.chunk_size: must be >= 1"),
    ("pipeline.sl_data.revisions=-1", "pipeline.sl_data.revisions: must be >= 1"),
    ("+pipeline.sl_data.revsions=2", "pipeline.sl_data.revsions: Key 'revsions' not in"),
    ("+pipeline.sl_data.sampling.tempp=1", "pipeline.sl_data.sampling.tempp: Key 'tempp' not in 'Sampling'"),
    ("pipeline.sl_data=null", "pipeline.sft.mixture.0.source: node 'sl_data' was dropped"),
    ("+pipeline.extra={kind:sft}", "+stage@pipeline.extra=sft"),
    ("models.generator.source=bogus", "models.generator.source: 'bogus' unknown"),
    ("models.generator.source=hub", "models.generator.id: source=hub needs a hub id"),
    ("models.generator.source=local", "models.generator.path: source=local needs the folder"),
    ("models.generator.max_batch_size=0", "models.generator.max_batch_size: must be >= 1"),
    ("pipeline.sft.trainer.per_device_train_batch_size=0", "sft.trainer.per_device_train_batch_size: must be >= 1"),
    ("pipeline.sft.trainer.learning_rate=-1", "pipeline.sft.trainer.learning_rate: must be >= 0"),
    ("pipeline.rl.trainer.max_steps=0", "pipeline.rl.trainer.max_steps: must be >= 1, or -1"),
]


@pytest.mark.parametrize("override,message", BAD_OVERRIDES, ids=[o for o, _ in BAD_OVERRIDES])
def test_plan_rejects_bad_values_naming_the_key(override, message):
    cfg = compose_run(["recipe=tiny", override])
    with pytest.raises(CaiError) as error:
        graph.plan(cfg)
    assert message in str(error.value)


def test_greedy_decoding_may_keep_any_temperature():
    graph.plan(compose_run(["recipe=tiny", "pipeline.helpful.sampling.do_sample=false",
                            "pipeline.helpful.sampling.temperature=0"]))


@pytest.mark.parametrize("content,message", [(b"\xff\xfe hello\n", "not UTF-8 text (byte 0 is 0xff)"),
                                             (b'{"prompt": "\xff"}\n', "not UTF-8 text (byte 12")])
def test_prompt_file_that_is_not_utf8(tmp_path, content, message):
    path = tmp_path / ("p.txt" if content.startswith(b"\xff") else "p.jsonl")
    path.write_bytes(content)
    with pytest.raises(CaiError) as error:
        sources.read_rows(sources.parse_uri(f"file://{path}"))
    assert message in str(error.value)


def test_parquet_file_that_is_not_parquet(tmp_path):
    path = tmp_path / "p.parquet"
    path.write_text("not parquet")
    with pytest.raises(CaiError, match="not a readable Parquet file"):
        sources.read_rows(sources.parse_uri(f"file://{path}"))


def test_misspelled_source_option():
    with pytest.raises(CaiError, match="unknown option 'feild'; known: field"):
        sources.parse_uri("file://x.jsonl?feild=text")


def test_node_failing_before_any_work_leaves_no_partial_folder(tmp_path):
    cfg = compose_run(["recipe=tiny", "pipeline.helpful.inputs.prompts=file:///nonexistent.jsonl", f"home={tmp_path}"])
    node = graph.build_nodes(cfg)["helpful"]
    node.key, node.context = "k" * 20, {}
    store = Store(tmp_path)
    with pytest.raises(CaiError, match="nonexistent.jsonl"):
        execute(node, cfg, store, {}, tmp_path, engine_factory=lambda spec, home: pytest.fail("loaded a model"))
    assert not store.partial(node.key).exists()
