"""Run-time guards on what a config may do: no `_target_` (components are chosen by registered name, never by
import path from a config), and no secret copied into the config, where node.yaml, lineage.json and plan.json
would record it (a model names its key's environment variable in `api_key_env` instead).
"""
from __future__ import annotations

import os
import re
from typing import Any, Iterator, Tuple

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cai.errors import CaiError

SECRET_NAME = re.compile(r"(^|_)(TOKEN|KEY|SECRET|PASSWORD|PASSWD)(_|$)", re.IGNORECASE)
KNOWN_SECRETS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY")
MIN_SECRET_CHARS = 8  # shorter values ("1", "true") would match by accident


def leaves(node: Any, where: str = "") -> Iterator[Tuple[str, Any]]:
    """(dotted key, value) of every leaf of a plain container."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from leaves(value, f"{where}.{index}")
    else:
        yield where, node


def reject_targets(cfg: DictConfig) -> None:
    """A `_target_` anywhere in the config is an error naming its key: cai never instantiates from configs."""
    for key, _ in _keys(cfg):
        if key.split(".")[-1] == "_target_" and not key.startswith("hydra."):  # Hydra's own launcher config
            raise CaiError(f"{key}: `_target_` is not allowed: cai picks stages and engines by registered name "
                           f"(kind: sft, engine: hf); code from other packages registers through entry points "
                           f"(cai.stages, cai.engines), never from a config")


def _keys(node: Any, where: str = "") -> Iterator[Tuple[str, Any]]:
    if isinstance(node, DictConfig):
        for key in node.keys():
            full = f"{where}.{key}" if where else str(key)
            yield full, None
            yield from _keys(node._get_node(key), full)
    elif isinstance(node, ListConfig):
        for index in range(len(node)):
            yield from _keys(node._get_node(index), f"{where}.{index}")


def secret_values(cfg: DictConfig) -> dict:
    """{value: variable} of the environment's secrets: known token variables, the ones models name in
    `api_key_env`, and any variable whose name says it is a key, token, secret or password."""
    named = {spec.get("api_key_env") for spec in cfg.get("models", {}).values() if spec.get("api_key_env")}
    names = {n for n in os.environ if n in KNOWN_SECRETS or n in named or SECRET_NAME.search(n)}
    return {os.environ[n]: n for n in sorted(names) if len(os.environ[n]) >= MIN_SECRET_CHARS}


def reject_secrets(cfg: DictConfig) -> None:
    """A config value holding (or containing) a secret from the environment is an error naming the key, not the
    value: it would be written into node.yaml, lineage.json, plan.json and the run's logs."""
    secrets = secret_values(cfg)
    if not secrets:
        return
    for key, value in _resolved_leaves(cfg):
        for secret, variable in secrets.items():
            if isinstance(value, str) and secret in value:
                raise CaiError(f"{key}: holds the value of ${variable}; give a model `api_key_env: {variable}` "
                               f"(the variable's name) instead, so the secret is never written to the store, "
                               f"the run directory or the logs")


def _resolved_leaves(cfg: DictConfig) -> Iterator[Tuple[str, Any]]:
    """Leaves of each run-wide section, interpolations resolved (a section that does not resolve is skipped: the
    plan's own checks name its key)."""
    for top in cfg.keys():
        if top == "hydra":
            continue
        try:
            section = OmegaConf.to_container(cfg[top], resolve=True) if OmegaConf.is_config(cfg[top]) else cfg[top]
        except OmegaConfBaseException:
            continue
        yield from leaves(section, str(top))
