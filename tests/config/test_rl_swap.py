"""Swapping RL for DPO at the same node (`stage@pipeline.rl=dpo`, issue 5): whatever a recipe sets under
pipeline.rl must fit both schemas, and a beta sweep must work with either stage mounted."""
from __future__ import annotations

import pytest

from cai import graph
from cai.config import compose_run


def rl_recipes():
    """Recipes that promise the swap: their rl node sets only keys dpo also has. (hh_mistral sets RL-only ones, such
    as the completion length, so its RL node is not swappable as is.)"""
    return ["smol", "tiny"]


@pytest.mark.parametrize("recipe", rl_recipes())
def test_rl_node_swaps_to_dpo_and_plans(recipe, cai_home):
    cfg = compose_run([f"recipe={recipe}", "stage@pipeline.rl=dpo"])
    nodes = {n.name: n for n in graph.plan(cfg)}
    assert nodes["rl"].stage.name == "dpo" and "reward" not in nodes["rl"].inputs
    assert nodes["rl"].inputs["model"].target == compose_run([f"recipe={recipe}"]).pipeline.rl.inputs.model


def test_tiny_dpo_at_the_rl_node_trains_on_the_preferences(cai_home):
    nodes = {n.name: n for n in graph.plan(compose_run(["recipe=tiny", "stage@pipeline.rl=dpo"]))}
    assert dict(graph.describe_inputs(nodes["rl"])) == {"model": "sft", "mixture.0": "prefs"}


@pytest.mark.parametrize("kind", ["rl", "dpo"])
def test_beta_sweeps_either_stage_and_reuses_the_upstream_nodes(kind, cai_home):
    from cai.stages.dpo import beta_option

    swap = [] if kind == "rl" else ["stage@pipeline.rl=dpo"]
    plans = [{n.name: n for n in graph.plan(compose_run(["recipe=tiny", *swap, f"pipeline.rl.beta={beta}"]))}
             for beta in (0.05, 0.1)]
    assert plans[0]["rl"].key != plans[1]["rl"].key
    assert all(plans[0][n].key == plans[1][n].key for n in ("sl_data", "sft", "pairs", "prefs"))
    assert plans[0]["rl"].cfg.beta == 0.05
    if kind == "dpo":
        assert beta_option(plans[0]["rl"].cfg) == {"beta": 0.05}
