"""Every recipe composes and plans; typos and wrong types fail at compose time naming the full key."""
from __future__ import annotations

import socket
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError, ValidationError

from cai import graph
from cai.config import compose_run, recipe_names
from cai.constitution.validate import validate_constitution
from cai.errors import CaiError
from tests.conftest import SHARED

RECIPES = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))


def test_recipes_are_discovered():
    assert RECIPES == recipe_names() and {"smol", "tiny"} <= set(RECIPES)


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_composes_and_plans(recipe, cai_home):
    cfg = compose_run([f"recipe={recipe}"])
    assert cfg.recipe_name == recipe
    if recipe == "hhh_eval" and not (SHARED / "evals").is_dir():  # its input is read in place from ../shared
        with pytest.raises(CaiError, match="pipeline.hhh.inputs.evals: .*CAI_SHARED"):
            graph.plan(cfg)
        return
    if recipe == "served_judge":  # its judge is a server: with none listening, the plan names the URL
        assert cfg.models.judge.engine == "openai" and cfg.models.judge.source == "gguf_package"
        cfg.models.judge.base_url = f"http://127.0.0.1:{closed_port()}/v1"
        with pytest.raises(CaiError, match=f"server {cfg.models.judge.base_url} did not answer"):
            graph.plan(cfg)
        return
    plan = graph.plan(cfg)
    assert plan and all(len(node.key) == 20 for node in plan)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _compose_error(*overrides: str) -> str:
    with pytest.raises((ConfigCompositionException, ConfigKeyError, ValidationError)) as info:
        compose_run(["recipe=tiny", *overrides])
    err = info.value
    return f"{err} {err.__cause__ or ''}"


def test_typo_in_a_mounted_sampling_key_names_the_full_key():
    assert "pipeline.sl_data.sampling.temprature" in _compose_error("pipeline.sl_data.sampling.temprature=1")


def test_wrong_type_names_the_key():
    message = _compose_error("pipeline.sl_data.revisions=abc")
    assert "pipeline.sl_data.revisions" in message and "abc" in message


def test_typo_in_a_model_key_names_it():
    assert "models.generator.dtyp" in _compose_error("models.generator.dtyp=float32")


def test_unknown_recipe_lists_the_available_ones():
    with pytest.raises(CaiError, match="unknown recipe 'nope'; available recipes: .*tiny"):
        compose_run(["recipe=nope"])


def test_sampling_preset_swaps_and_stays_overridable():
    cfg = compose_run(["recipe=tiny", "sampling@pipeline.sl_data.sampling=greedy",
                       "pipeline.sl_data.sampling.max_new_tokens=7"])
    assert cfg.pipeline.sl_data.sampling.do_sample is False and cfg.pipeline.sl_data.sampling.max_new_tokens == 7


def test_principle_multiselect_on_the_command_line():
    cfg = compose_run(["recipe=tiny", "constitution/principle@constitution.critique_revision=[toxic,illegal]"])
    assert set(cfg.constitution.critique_revision) == {"toxic", "illegal"}


def test_constitution_edits_change_the_sl_data_key_only_when_read(cai_home):
    key = lambda *o: graph.plan(compose_run(["recipe=tiny", *o]))[0].key
    base = key()
    assert key("constitution.select=[toxic]") != base
    assert key("constitution.critique_revision.toxic.revision=Be kind.") != base
    assert key("constitution.comparison.cmp_harmless_general.text=Other.") == base  # sl_data never reads it


def test_principles_are_added_and_removed_on_the_command_line(cai_home):
    mine = '+constitution.critique_revision.mine={critique: "Point out rudeness.", revision: "Rewrite it politely."}'
    cfg = compose_run(["recipe=tiny", mine, "constitution.select=[mine]", "~constitution.critique_revision.toxic"])
    validate_constitution(cfg.constitution)
    assert cfg.constitution.critique_revision.mine.revision == "Rewrite it politely."
    assert "toxic" not in cfg.constitution.critique_revision


def test_a_typo_in_an_added_principle_is_named(cai_home):
    cfg = compose_run(["recipe=tiny", '+constitution.critique_revision.mine={critque: "x", revision: "y"}'])
    with pytest.raises(CaiError) as info:
        validate_constitution(cfg.constitution)
    assert "constitution.critique_revision.mine.critque is not a field (did you mean 'critique'?)" in str(info.value)
    assert "constitution.critique_revision.mine.critique is missing" in str(info.value)
