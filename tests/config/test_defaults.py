"""Defaults live once, in the dataclasses: a stage option file (conf/stage/*.yaml) or sampling preset that restates a
default fails, and so does a value that differs without a comment saying why."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
import yaml
from omegaconf import OmegaConf

from cai.registry import BUILTIN_STAGES, all_stages
from cai.schema import Sampling

CONF = Path(__file__).resolve().parents[2] / "conf"


def leaves(tree: Any, prefix: str = "") -> Iterator[Tuple[str, Any]]:
    """(dotted key, value) of every leaf of a YAML mapping."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from leaves(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), tree


def lookup(defaults: Dict[str, Any], key: str) -> Any:
    node: Any = defaults
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return KeyError
        node = node[part]
    return node


def problems(path: Path, defaults: Dict[str, Any]) -> List[str]:
    """Restated defaults, and differing values whose line has no `# why` comment."""
    text = path.read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    data.pop("defaults", None)
    lines = text.splitlines()
    found = []
    for key, value in leaves(data):
        default = lookup(defaults, key)
        if default is not KeyError and default == value:
            found.append(f"{path.name}: {key} restates the default {value!r}")
            continue
        leaf = key.rsplit(".", 1)[-1]
        line = next((line for line in lines if line.lstrip().startswith(f"{leaf}:")), "")
        if "#" not in line:
            found.append(f"{path.name}: {key}={value!r} differs from the default {default!r} without saying why")
    return found


STAGE_FILES = sorted((CONF / "stage").glob("*.yaml"))
PRESETS = sorted((CONF / "sampling").glob("*.yaml"))


@pytest.mark.parametrize("path", STAGE_FILES, ids=lambda p: p.stem)
def test_stage_options_hold_no_restated_default(path):
    schema = all_stages()[path.stem].schema
    assert not problems(path, OmegaConf.to_container(OmegaConf.structured(schema)))


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_sampling_presets_state_only_what_differs(path):
    assert not problems(path, OmegaConf.to_container(OmegaConf.structured(Sampling)))


def test_every_stage_kind_has_its_option_file():
    assert {p.stem for p in STAGE_FILES} == set(BUILTIN_STAGES)


def test_the_check_fails_on_a_restated_and_an_unexplained_default(tmp_path):
    planted = tmp_path / "label_preferences.yaml"
    planted.write_text("defaults:\n  - _self_\nensemble: 4\nchunk_size: 8\nclamp_low: 0.3   # why\n")
    schema = all_stages()["label_preferences"].schema
    found = problems(planted, OmegaConf.to_container(OmegaConf.structured(schema)))
    assert found == ["label_preferences.yaml: ensemble restates the default 4",
                     "label_preferences.yaml: chunk_size=8 differs from the default 64 without saying why"]
