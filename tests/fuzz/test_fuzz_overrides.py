"""Command-line overrides, fuzzed: any key of recipe=tiny (or an unknown one, a deletion, a dropped node) set to
any value (wrong types, out of range, huge, odd unicode, Hydra grammar, node and model references, source URIs),
composed and planned as `python -m cai recipe=tiny dry_run=true KEY=VALUE` would: it plans, or fails naming the key.
"""
from __future__ import annotations

import functools
import math
import tempfile
from pathlib import Path

from hypothesis import given, strategies as st
from omegaconf import OmegaConf

from cai.config import compose_run
from cai.runner import run
from cai.security import leaves
from tests.fuzz.outcomes import attempt, finished

SKIP = ("dry_run", "home", "shared_dir", "recipe_name")  # these would run the pipeline or move the store
NODES = ["sl_data", "helpful", "sft", "dpo", "pairs", "prefs", "rm", "rl", "eval", "nope"]
REFS = [*NODES, "models.generator", "models.judge", "models.nope", "cai://redteam", "cai://nope",
        "file:///nonexistent.jsonl", "file://x.jsonl?feild=text", "file://x.jsonl?field=prompt&format=hh"]


@functools.lru_cache(maxsize=1)
def known_keys():
    """Every leaf key of the composed recipe=tiny config (pipeline, models, constitution selection, run-wide)."""
    cfg = compose_run(["recipe=tiny"])
    keys = [k for top in ("pipeline", "models") for k, _ in leaves(OmegaConf.to_container(cfg[top]), top)]
    return sorted(keys) + ["seed", "targets", "cache.mode", "constitution.select", "constitution.comparison_select"]


scalars = st.one_of(
    st.integers(min_value=-2**70, max_value=2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.none(), st.sampled_from(REFS),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40),
    st.text(alphabet="${}[]():,=\"'\\ .a-", max_size=12), st.integers(0, 5000).map(lambda n: "x" * n * 40))


def render(value) -> str:
    """A value as the override grammar spells it (strings raw or single-quoted, lists, dicts)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, (int, float)):
        return repr(value).replace("inf", "inf")
    if isinstance(value, list):
        return "[" + ",".join(render(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{render(v)}" for k, v in value.items()) + "}"
    return value if isinstance(value, str) and value.isidentifier() else "'" + str(value).replace("\\", "\\\\") \
        .replace("'", "\\'") + "'"


values = st.one_of(scalars, st.lists(scalars, max_size=4), st.dictionaries(
    st.sampled_from(["source", "weight", "kind", "x", "_target_"]), scalars, max_size=3))


@st.composite
def overrides(draw):
    """One override: an existing key set to a value, an unknown key added, a key or node deleted."""
    form = draw(st.sampled_from(["set", "set", "set", "add", "delete", "drop"]))
    key = draw(st.sampled_from(known_keys()))
    if form == "add":
        key = f"{key.rsplit('.', 1)[0]}.{draw(st.from_regex(r'[a-z_]{1,12}', fullmatch=True))}"
        return f"+{key}={render(draw(values))}", key
    if form == "delete":
        return f"~{key}", key
    if form == "drop":
        node = draw(st.sampled_from(NODES))
        return f"pipeline.{node}=null", f"pipeline.{node}"
    return f"{key}={render(draw(values))}", key


def names_of(key: str):
    """What a clear error about `key` mentions: the key, its last part, its parent, or its node."""
    parts = key.split(".")
    return [key, parts[-1], ".".join(parts[:-1]), ".".join(parts[:2])]


@given(case=overrides())
def test_an_override_plans_or_fails_naming_its_key(case):
    override, key = case
    if any(key.startswith(s) for s in SKIP) or "hf://" in override:
        return  # hf:// would reach for the hub, never at plan time in these tests
    with tempfile.TemporaryDirectory() as tmp:
        home, composed = Path(tmp), {}
        outcome = attempt("overrides", "compose", lambda: composed.setdefault(
            "cfg", compose_run(["recipe=tiny", override, "dry_run=true", f"home={tmp}"])), names_of(key))
        if outcome == "ran":
            outcome = attempt("overrides", "run", lambda: run(composed["cfg"], home / "run"), names_of(key))
        finished("overrides", outcome)
