"""Content keys and seeds: canonical digests of configs, model roles' keys, and per-example random streams.

A node's key names its bytes, so what goes into a seed must be in the key and nothing else: seeds are drawn from
(run seed, example id, turn), never from a batch or chunk position (see README, "What changes the bytes").
"""
from __future__ import annotations

import hashlib
import json
import random
from typing import Any, Dict, Iterable

from omegaconf import DictConfig, OmegaConf

NON_SEMANTIC = {"log_every", "num_samples", "launcher", "machines", "progress", "chunk_size", "shards", "executor"}
"""Node fields that change how a stage runs or reports, not what it produces: left out of node keys."""
MODEL_FIELDS_NOT_IN_KEY = {"max_batch_tokens", "max_batch_size", "api_key_env"}
"""Model spec fields that change how requests are batched or authenticated, not the bytes produced."""


def digest(obj: Any) -> str:
    """A short sha256 of canonical JSON."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def stable_rng(*parts: Any) -> random.Random:
    """A random generator seeded from the given parts, independent of batch order and of PYTHONHASHSEED."""
    raw = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(raw[:8], "big"))


def example_seed(seed: int, example_id: str, turn: str) -> int:
    """The sampling seed of one example's turn (63 bits): what every engine seeds that row's draws with."""
    raw = hashlib.sha256(f"{seed}\x1f{example_id}\x1f{turn}".encode()).digest()
    return int.from_bytes(raw[:8], "big") >> 1


def example_seeds(seed: int, ids: Iterable[str], turn: str) -> list:
    """`example_seed` for each id."""
    return [example_seed(seed, i, turn) for i in ids]


def semantic_config(node_cfg: DictConfig) -> Dict[str, Any]:
    """The node's resolved config minus run-only fields, as hashed into its key."""
    resolved = OmegaConf.to_container(node_cfg, resolve=True, throw_on_missing=True)
    return {k: v for k, v in resolved.items() if k not in NON_SEMANTIC and k != "inputs"}


def model_key(spec: DictConfig, ignored_options: Iterable[str] = ()) -> str:
    """Key of a model role: what is loaded and which engine runs it, not how requests are batched.

    The engine is keyed: hf, vllm and a server sample differently, so their bytes differ. `ignored_options` are
    the engine's `engine_options` that do not change bytes (e.g. vLLM's gpu_memory_utilization)."""
    resolved = OmegaConf.to_container(spec, resolve=True)
    keyed = {k: v for k, v in resolved.items() if k not in MODEL_FIELDS_NOT_IN_KEY}
    ignored = set(ignored_options)
    keyed["engine_options"] = {k: v for k, v in (keyed.get("engine_options") or {}).items() if k not in ignored}
    return "model:" + digest(keyed)
