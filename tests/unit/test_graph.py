"""Graph checks and content keys: references, types, cycles, targets, and what changes a key."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict

import pytest
from omegaconf import OmegaConf

from cai import graph
from cai.config import compose_run
from cai.errors import CaiError
from cai.registry import STAGES, stage
from cai.stage_api import StageConfig


@dataclass
class EchoConfig(StageConfig):
    kind: str = "echo_test"
    inputs: Dict[str, str] = field(default_factory=dict)
    size: int = 1


stage("echo_test", schema=EchoConfig, version=1, produces="thing", consumes={"src": ("thing",)})(lambda ctx: {})


def echo_cfg(pipeline: dict, targets=()) -> OmegaConf:
    return OmegaConf.create({"seed": 0, "targets": list(targets), "models": {}, "pipeline": pipeline})


def node(size=1, **inputs):
    return {"kind": "echo_test", "size": size, "inputs": inputs, "num_samples": 20, "log_every": 10}


def keys(cfg) -> dict:
    return {n.name: n.key for n in graph.plan(cfg)}


def test_order_follows_references():
    cfg = echo_cfg({"c": node(src="b"), "a": node(), "b": node(src="a")})
    assert [n.name for n in graph.plan(cfg)] == ["a", "b", "c"]


def test_targets_prune_to_ancestors():
    cfg = echo_cfg({"a": node(), "b": node(src="a"), "c": node(src="a")}, targets=["b"])
    assert [n.name for n in graph.plan(cfg)] == ["a", "b"]


def test_cycle_is_reported():
    with pytest.raises(CaiError, match="cycle: a -> b -> a"):
        graph.plan(echo_cfg({"a": node(src="b"), "b": node(src="a")}))


def test_unknown_reference_suggests_close_match():
    with pytest.raises(CaiError, match=r"pipeline.b.inputs.src: unknown node 'aa'; did you mean a"):
        graph.plan(echo_cfg({"a": node(), "b": node(src="aa")}))


def test_unknown_target_is_reported():
    with pytest.raises(CaiError, match="targets: unknown node 'z'"):
        graph.plan(echo_cfg({"a": node()}, targets=["z"]))


def test_changing_a_node_rekeys_it_and_its_descendants_only():
    base = keys(echo_cfg({"a": node(), "b": node(src="a"), "c": node()}))
    changed = keys(echo_cfg({"a": node(size=2), "b": node(src="a"), "c": node()}))
    assert changed["a"] != base["a"] and changed["b"] != base["b"] and changed["c"] == base["c"]


def test_reporting_fields_and_node_names_do_not_change_keys():
    base = keys(echo_cfg({"a": node()}))
    quiet = node()
    quiet.update(num_samples=5, log_every=1)
    assert keys(echo_cfg({"a": quiet})) == base
    assert keys(echo_cfg({"renamed": node()}))["renamed"] == base["a"]


def test_what_a_model_role_loads_and_runs_on_is_keyed_how_it_batches_is_not():
    base = {n.name: n.key for n in graph.plan(compose_run(["recipe=tiny", "targets=[sl_data]"]))}

    def sl_key(*overrides):
        return {n.name: n.key for n in graph.plan(compose_run(["recipe=tiny", "targets=[sl_data]", *overrides]))}

    for changed in ("models.generator.dtype=bfloat16", "models.generator.engine=scripted",
                    "models.generator.system_prompt=Be brief.", "+models.generator.engine_options.attn_implementation=eager"):
        assert sl_key(changed) != base, changed
    for same in ("models.generator.max_batch_size=2", "models.generator.max_batch_tokens=999",
                 "models.generator.api_key_env=SOME_VAR", "pipeline.sl_data.chunk_size=1"):
        assert sl_key(same) == base, same


def test_an_engine_option_the_engine_does_not_know_is_named_at_plan_time():
    with pytest.raises(CaiError, match="models.generator.engine_options.attn_impl: not an option of engine hf"):
        graph.plan(compose_run(["recipe=tiny", "targets=[sl_data]", "+models.generator.engine_options.attn_impl=x"]))


def test_example_seeds_differ_by_example_turn_and_run_seed():
    from cai.keys import example_seed

    seeds = {example_seed(s, i, t) for s in (0, 1) for i in ("a", "b") for t in ("initial", "c0", "r0")}
    assert len(seeds) == 12 and all(0 <= s < 2**63 for s in seeds)


def test_seed_changes_keys():
    cfg = echo_cfg({"a": node()})
    other = echo_cfg({"a": node()})
    other.seed = 1
    assert keys(cfg) != keys(other)


def test_type_mismatch_is_reported():
    cfg = compose_run(["recipe=tiny", "pipeline.sl_data.inputs.generator=cai://redteam"])
    with pytest.raises(CaiError, match="produces 'data' but critique_revision needs model"):
        graph.plan(cfg)


def test_unknown_model_role_suggests():
    cfg = compose_run(["recipe=tiny", "pipeline.sl_data.inputs.generator=models.generatr"])
    with pytest.raises(CaiError, match="did you mean generator"):
        graph.plan(cfg)


def test_registry_lists_available_kinds():
    from cai.registry import get_stage

    with pytest.raises(CaiError, match="available: .*critique_revision"):
        get_stage("nope")
    assert "critique_revision" in STAGES
