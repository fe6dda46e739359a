"""Plan-time checks every node gets, whatever its stage: its keys against the stage schema, and value ranges.

Hydra types each value at compose time, but a key added with `+` skips the schema, and a well-typed value can still be
out of range (`max_new_tokens=0`, `limit=-1`). Both fail here, naming the key, before any model loads.
"""
from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cai.errors import CaiError, first_line

POSITIVE = ("chunk_size", "revisions", "log_every", "shards")
"""Integer fields that must be >= 1 wherever a stage has them."""
LIMITS = ("limit", "audit_limit", "overrefusal_limit")
"""Row limits: >= 1, or null for every row."""


def check_node(node_cfg: DictConfig, schema: type, where: str) -> None:
    """Unknown keys and out-of-range values of one node's config."""
    check_keys(node_cfg, schema, where)
    for name in LIMITS:
        if node_cfg.get(name) is not None and node_cfg[name] < 1:
            raise CaiError(f"{where}.{name}: must be >= 1, or null for every row; got {node_cfg[name]}")
    for name in POSITIVE:
        if node_cfg.get(name) is not None and node_cfg[name] < 1:
            raise CaiError(f"{where}.{name}: must be >= 1, got {node_cfg[name]}")
    if node_cfg.get("sampling") is not None:
        check_sampling(node_cfg.sampling, f"{where}.sampling")
    if node_cfg.get("executor") is not None:
        from cai.executors import check_executor

        check_executor(node_cfg.executor, f"{where}.executor")


def check_keys(node_cfg: DictConfig, schema: type, where: str) -> None:
    """A key the stage's schema does not know (e.g. added with `+`, where Hydra skips the schema) is an error."""
    plain = OmegaConf.create(OmegaConf.to_container(node_cfg, resolve=False))  # untyped: merged into the schema
    try:
        OmegaConf.merge(OmegaConf.structured(schema), plain)
    except OmegaConfBaseException as error:
        key = f"{where}.{error.full_key}" if getattr(error, "full_key", None) else where
        raise CaiError(f"{key}: {first_line(error)}") from None


def check_sampling(sampling: Any, where: str) -> None:
    """Decoding settings that generate would reject, or silently misuse (a negative temperature inverts sampling)."""
    problems = [
        ("max_new_tokens", sampling.max_new_tokens >= 1, "must be >= 1"),
        ("top_k", sampling.top_k >= 0, "must be >= 0 (0 disables top-k)"),
        ("top_p", 0 < sampling.top_p <= 1, "must be in (0, 1] (1 disables top-p)"),
        ("repetition_penalty", sampling.repetition_penalty > 0, "must be > 0 (1 disables it)"),
        ("temperature", sampling.temperature > 0 or not sampling.do_sample,
         "must be > 0 when do_sample is true (for greedy decoding set do_sample=false)"),
    ]
    for name, ok, rule in problems:
        if not ok:
            raise CaiError(f"{where}.{name}: {rule}; got {sampling[name]}")
