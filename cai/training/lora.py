"""LoRA through PEFT as an option of any training stage, and loading / saving the models the stages train.

A trained artifact's `model/` loads with `AutoModelForCausalLM.from_pretrained` either way: merged (plain weights),
or unmerged, where the folder holds the base weights beside `adapter_config.json` + `adapter_model.safetensors` and
transformers applies the adapter itself (its PEFT integration loads an adapter embedded in a full model folder).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional

from cai.errors import CaiError


@dataclass
class LoraOptions:
    enabled: bool = False
    """Train low-rank adapters on a frozen base instead of all weights."""
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: List[str] = field(default_factory=lambda: ["all-linear"])
    """Module names to adapt; ["all-linear"] adapts every linear layer but the output head."""
    merge: bool = True
    """true: save merged weights; false: save the base plus the adapter (both load with from_pretrained)."""


def check_lora(options, where: str) -> None:
    """Rank, alpha and dropout in range, and PEFT accepts the config."""
    if not options.enabled:
        return
    if options.r < 1 or options.alpha <= 0 or not 0 <= options.dropout < 1:
        raise CaiError(f"{where}.lora: need r >= 1, alpha > 0 and 0 <= dropout < 1 "
                       f"(got r={options.r}, alpha={options.alpha}, dropout={options.dropout})")
    try:
        peft_config(options)
    except (ValueError, TypeError) as err:
        raise CaiError(f"{where}.lora: {err}") from None


def peft_config(options, task_type: str = "CAUSAL_LM") -> Optional[Any]:
    """The `peft.LoraConfig` for enabled options, else None (SEQ_CLS also trains the reward model's score head)."""
    if not options.enabled:
        return None
    from peft import LoraConfig

    targets = list(options.target_modules)
    return LoraConfig(r=options.r, lora_alpha=options.alpha, lora_dropout=options.dropout, task_type=task_type,
                      target_modules="all-linear" if targets == ["all-linear"] else targets)


def load_model(spec, home: Path, dtype: Any) -> Any:
    """A causal LM to train from a model role or an upstream artifact; an unmerged adapter is merged in first."""
    from transformers import AutoModelForCausalLM

    from cai.models import checkpoint, reachable

    revision = spec.revision if spec.source == "hub" else None
    with reachable(spec):
        model = AutoModelForCausalLM.from_pretrained(checkpoint(spec, home), revision=revision, dtype=dtype,
                                                     trust_remote_code=spec.trust_remote_code)
    if getattr(model, "_hf_peft_config_loaded", False):
        merge_loaded_adapters(model)
    return model


def merge_loaded_adapters(model: Any) -> None:
    """Fold adapters transformers injected on load into the base weights, leaving a plain model (TRL then adds
    a fresh adapter, or trains all weights)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer):
            module.merge()
            parent, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent), child, module.get_base_layer())
    model._hf_peft_config_loaded = False
    del model.peft_config
    # transformers keeps the adapter's key renaming (model. <-> base_model.model.model.) for save_pretrained to
    # reverse; the merged model must save with plain keys (checked on transformers 5.24)
    if hasattr(model, "_weight_conversions"):
        del model._weight_conversions
    # PEFT froze every base weight when it injected the adapter: unfreeze, or full fine-tuning gets no gradients
    model.requires_grad_(True)


def save_model(trainer: Any, tokenizer: Any, out: Path, options) -> None:
    """Write `out/` (weights, tokenizer, chat template): merged, or base + adapter."""
    if not options.enabled:
        trainer.save_model(str(out))  # gathers FSDP / ZeRO-3 shards; saves the tokenizer too
        # TrainingArguments as a pickle: nothing reads it (node.yaml holds the config), and a published pickle
        # invites torch.load on an artifact
        (out / "training_args.bin").unlink(missing_ok=True)
        return
    if not trainer.is_world_process_zero():
        return
    model = trainer.accelerator.unwrap_model(trainer.model)
    if options.merge:
        model = model.merge_and_unload()
    else:
        model.save_pretrained(out)  # adapter_config.json + adapter_model.safetensors
        sort_target_modules(out / "adapter_config.json")
        model = model.unload()  # the untouched base, saved beside the adapter
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def sort_target_modules(config_file: Path) -> None:
    """PEFT writes `target_modules` from a set, in an order that changes with each process's hash seed: sorted, the
    same adapter gives the same bytes (a rerun, or a resumed run, matches an uninterrupted one)."""
    import json

    config = json.loads(config_file.read_text())
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True))  # PEFT's own layout
