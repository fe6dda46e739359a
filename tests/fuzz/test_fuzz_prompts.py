"""Prompt files, fuzzed: JSONL / text / Parquet files with odd encodings, binary bytes, huge lines, blank lines,
duplicates, wrong columns and wrong types, read by the `helpful` node (answer_prompts on the scripted engine) as
`pipeline.helpful.inputs.prompts=file://FILE[?field=...]`: it runs, or fails naming the file (and row)."""
from __future__ import annotations

import copy
import functools
import json
import tempfile
from pathlib import Path

from hypothesis import given, settings, strategies as st

from cai.config import compose_run
from cai.engines.scripted import ScriptedEngine
from cai.runner import run
from tests.fuzz.outcomes import attempt, finished

odd_text = st.text(st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=60)
json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | odd_text,
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_text, inner, max_size=3),
                          max_leaves=6)
row = st.one_of(
    st.builds(lambda t: {"prompt": t}, odd_text), st.builds(lambda t: {"prompt": t, "id": t, "category": 3}, odd_text),
    st.builds(lambda v: {"prompt": v}, json_value), st.builds(lambda k, v: {k: v}, odd_text, json_value),
    st.just({"prompt": "How do I bake bread?"}), json_value)


def render_line(value) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


lines = st.lists(st.one_of(row.map(render_line), st.just(b""), st.just(b"   "), st.binary(max_size=40),
                           st.integers(1, 300_000).map(lambda n: b'{"prompt": "' + b"y" * n + b'"}'),
                           st.just(b'{"prompt": "cut'), st.just(b"\xef\xbb\xbf" + render_line({"prompt": "bom"}))),
                 max_size=12)


@st.composite
def prompt_files(draw):
    """(file name, bytes, ?query): the lines joined, sometimes duplicated, re-encoded, or a Parquet table."""
    body = b"\n".join(draw(lines) * draw(st.sampled_from([1, 1, 2])))
    suffix = draw(st.sampled_from([".jsonl", ".jsonl", ".txt", ".parquet", ".csv"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "latin-1"]))
    if encoding != "utf-8":
        body = body.decode("utf-8", "replace").encode(encoding, "replace")
    if suffix == ".parquet" and draw(st.booleans()):
        body = _parquet(draw(st.lists(st.builds(lambda t: {"prompt": t}, odd_text), max_size=5)))
    query = draw(st.sampled_from(["", "", "?field=prompt", "?field=text", "?field=", "?format=hh", "?feild=x"]))
    return f"prompts{suffix}", body, query


def _parquet(rows) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows or [{"prompt": "x"}]), out)
    return out.getvalue()


@functools.lru_cache(maxsize=1)
def helpful_config():
    """recipe=tiny's helpful node, composed once; each case points its input at a new file."""
    return compose_run(["recipe=tiny", "targets=[helpful]", "pipeline.helpful.limit=null"])


@settings(max_examples=2 * settings().max_examples)  # a case costs a fraction of a second: twice as many
@given(case=prompt_files())
def test_a_prompt_file_runs_or_fails_naming_the_file(case):
    name, body, query = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(body)
        cfg = copy.deepcopy(helpful_config())
        cfg.home, cfg.pipeline.helpful.inputs.prompts = f"{tmp}/home", f"file://{path}{query}"
        outcome = attempt("prompt files", "run", lambda: run(cfg, Path(tmp) / "run",
                                                             engine_factory=lambda spec, home: ScriptedEngine()),
                          [str(path), name])
        finished("prompt files", outcome)
