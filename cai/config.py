"""Config registration (schemas and recipes in Hydra's ConfigStore) and composing a run outside `python -m cai`.

The checkout keeps the design card's top-level folders (conf/, recipes/); a built wheel carries them as cai/conf and
cai/recipes (pyproject.toml maps them). Recipes are stored as the `recipe` group (package `_global_`), read from
whichever recipes/ folder cai.paths finds, so the group needs no `conf/recipe` link.
"""
from __future__ import annotations

from typing import List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf, open_dict

from cai.errors import CaiError
from cai.paths import PRIMARY, conf_dir, recipes_dir, shared_dir
from cai.schema import RunConfig

_registered = False


def recipe_names() -> List[str]:
    """Names of the shipped recipes (recipes/*.yaml)."""
    return sorted(p.stem for p in recipes_dir().glob("*.yaml"))


def register_schemas() -> None:
    """Store the run schema, each stage kind's schema (YAML options extend them, Hydra pattern 5.2) and the recipes;
    register cai's resolvers."""
    global _registered
    from cai.registry import all_stages  # no torch: stage modules import it lazily

    store = ConfigStore.instance()
    store.store(name="run_schema", node=RunConfig)
    for kind, stage in all_stages().items():
        store.store(group="schema/stage", name=kind, node=stage.schema)
    if _registered:
        return
    _registered = True
    for path in sorted(recipes_dir().glob("*.yaml")):
        store.store(group="recipe", name=path.stem, node=OmegaConf.load(path), package="_global_", provider="cai")
    OmegaConf.register_new_resolver("cai.shared", shared_file, replace=True)


def shared_file(relative: str, *, _root_: DictConfig) -> str:
    """`${cai.shared:evals/X.jsonl}`: a file:// URI inside the shared folder (`shared_dir`, else $CAI_SHARED)."""
    from pathlib import Path

    root = _root_.get("shared_dir")
    base = Path(root).expanduser().resolve() if root else shared_dir()
    if not base.is_dir():
        raise CaiError(f"shared_dir: {root!r} is not a folder")
    return f"file://{base / relative}"


def check_recipe(overrides: List[str]) -> None:
    """Fail with the list of recipes when `recipe=NAME` names none of them."""
    for item in overrides:
        key, _, value = item.partition("=")
        if key.lstrip("+~") == "recipe" and value:
            names = recipe_names()
            unknown = [v for v in value.split(",") if v not in names]
            if unknown and not value.startswith(("glob(", "choice(", "range(")):
                raise CaiError(f"unknown recipe {unknown[0]!r}; available recipes: {', '.join(names)}")


def compose_run(overrides: Optional[List[str]] = None) -> DictConfig:
    """Compose the run config as `python -m cai` would, for tests and tools (no Hydra run dir)."""
    from hydra import compose, initialize_config_dir

    from cai.config_files import check_user_configs

    overrides = list(overrides or [])
    check_recipe(overrides)
    check_user_configs(overrides)
    register_schemas()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name=PRIMARY, overrides=overrides, return_hydra_config=True)
    recipe = cfg.hydra.runtime.choices.get("recipe")
    with open_dict(cfg):
        del cfg["hydra"]
    cfg.recipe_name = recipe
    return cfg
