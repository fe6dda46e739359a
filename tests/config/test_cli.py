"""The command line as a user types it: errors exit non-zero before any model loads, Hydra flags work."""
from __future__ import annotations

import json

import yaml

from cai.config import recipe_names
from tests.conftest import run_cli


def test_unknown_recipe_exits_listing_recipes(cai_home):
    proc = run_cli("recipe=nope", home=cai_home)
    assert proc.returncode != 0 and "available recipes" in proc.stderr and "tiny" in proc.stderr


def test_typo_exits_naming_the_key_without_loading_a_model(cai_home):
    proc = run_cli("recipe=tiny", "pipeline.sl_data.sampling.temprature=1", home=cai_home)
    assert proc.returncode != 0 and "pipeline.sl_data.sampling.temprature" in proc.stderr
    assert not (cai_home / "store" / "model").exists()


def test_wrong_type_exits_naming_the_key(cai_home):
    proc = run_cli("recipe=tiny", "pipeline.sl_data.revisions=abc", home=cai_home)
    assert proc.returncode != 0 and "pipeline.sl_data.revisions" in proc.stderr


def test_unknown_reference_exits_with_a_suggestion(cai_home):
    proc = run_cli("recipe=tiny", "pipeline.sl_data.inputs.generator=models.generatr", home=cai_home)
    assert proc.returncode == 2 and "did you mean generator" in proc.stderr
    assert not (cai_home / "store" / "model").exists()


def test_dry_run_prints_the_plan_and_computes_nothing(cai_home):
    proc = run_cli("recipe=tiny", "dry_run=true", home=cai_home, check=True)
    plan_file = next((cai_home / "runs" / "tiny").glob("*/plan.json"))
    planned = json.loads(plan_file.read_text())["nodes"]
    assert [n["node"] for n in planned][0] == "sl_data" and all(n["status"] == "run" for n in planned)
    for node in planned:  # the printed table is the plan.json the run wrote
        assert node["key"] in proc.stdout and node["kind"] in proc.stdout
    assert not (cai_home / "store" / "critique_revision").exists()


def test_cfg_job_prints_the_composed_recipe(cai_home):
    job = yaml.safe_load(run_cli("recipe=tiny", "--cfg", "job", home=cai_home, check=True).stdout)
    assert job["pipeline"]["sl_data"]["kind"] == "critique_revision" and job["pipeline"]["sl_data"]["limit"] == 8


def test_help_lists_the_recipes_and_config_groups(cai_home):
    text = run_cli("--help", home=cai_home, check=True).stdout
    recipes = next(line for line in text.splitlines() if line.startswith("recipe: "))
    assert recipes.split(": ", 1)[1].split(", ") == recipe_names()
    assert any(line.startswith("constitution/principle: ") and "toxic" in line for line in text.splitlines())
