"""Where cai's config folders are: the checkout's top-level conf/ and recipes/, or their copies inside an installed
wheel (the build maps them to cai/conf and cai/recipes, see pyproject.toml)."""
from __future__ import annotations

import os
from pathlib import Path

from cai.errors import CaiError

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent
PRIMARY = "cai"
SHARED_ENV = "CAI_SHARED"


def _first_existing(*candidates: Path) -> Path:
    for path in candidates:
        if path.is_dir():
            return path
    raise CaiError(f"cannot find cai's config folder (looked in {', '.join(map(str, candidates))}): reinstall cai "
                   f"(`pip install cai` or, from a checkout, `pip install -e .`)")


def _in_checkout() -> bool:
    """Whether cai runs from its source tree (an editable install): conf/ and recipes/ sit beside the package."""
    return (CHECKOUT / "pyproject.toml").is_file() and (CHECKOUT / "conf" / f"{PRIMARY}.yaml").is_file()


def conf_dir() -> Path:
    """conf/: the checkout's (an editable install or a source tree) or the installed package's copy."""
    path = _first_existing(CHECKOUT / "conf", PACKAGE / "conf") if _in_checkout() else _first_existing(PACKAGE / "conf")
    if not (path / f"{PRIMARY}.yaml").is_file():
        raise CaiError(f"{path} holds no {PRIMARY}.yaml: reinstall cai")
    return path


def recipes_dir() -> Path:
    """recipes/: the checkout's, or the installed package's copy."""
    return _first_existing(CHECKOUT / "recipes") if _in_checkout() else _first_existing(PACKAGE / "recipes")


def shared_dir(where: str = "shared_dir") -> Path:
    """The folder of upstream files read in place (evals, constitutions): $CAI_SHARED, checked to exist."""
    value = os.environ.get(SHARED_ENV)
    if not value:
        raise CaiError(f"{where}: this recipe reads upstream files in place; set {SHARED_ENV}=/path/to/shared "
                       f"(the folder holding evals/ and constitutions/), or pass shared_dir=/path/to/shared")
    path = Path(value).expanduser().resolve()
    if not path.is_dir():
        raise CaiError(f"{where}: {SHARED_ENV}={value!r} is not a folder")
    return path
