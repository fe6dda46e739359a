"""Config registration (schemas in Hydra's ConfigStore) and the conf/ directory lookup."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, open_dict

from cai.registry import CaiError
from cai.schema import RunConfig

PRIMARY = "cai"


def conf_dir() -> Path:
    """The conf/ folder of this checkout (an editable install keeps it beside the package)."""
    path = Path(__file__).resolve().parent.parent / "conf"
    if not (path / f"{PRIMARY}.yaml").is_file():
        raise CaiError(f"cannot find {path}/{PRIMARY}.yaml: install cai from a checkout with `pip install -e .`")
    return path


def recipe_names() -> List[str]:
    """Names of the recipes in recipes/ (conf/recipe links there)."""
    return sorted(p.stem for p in (conf_dir() / "recipe").glob("*.yaml"))


def register_schemas() -> None:
    """Store the run schema and each stage kind's schema so YAML options extend them (Hydra pattern 5.2)."""
    from cai.stages import STAGE_SCHEMAS  # no torch: schemas only

    store = ConfigStore.instance()
    store.store(name="run_schema", node=RunConfig)
    for kind, schema in STAGE_SCHEMAS.items():
        store.store(group="schema/stage", name=kind, node=schema)


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

    overrides = list(overrides or [])
    check_recipe(overrides)
    register_schemas()
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        cfg = compose(config_name=PRIMARY, overrides=overrides, return_hydra_config=True)
    recipe = cfg.hydra.runtime.choices.get("recipe")
    with open_dict(cfg):
        del cfg["hydra"]
    cfg.recipe_name = recipe
    return cfg
