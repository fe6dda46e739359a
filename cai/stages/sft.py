"""Supervised fine-tuning, the SL half of CAI (Bai et al. 2022, sec. 3): TRL's SFTTrainer on the revised answers,
mixed by weight with helpful data so the model keeps its helpfulness (sec. 3.1)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List

from cai import sources
from cai.errors import CaiError
from cai.registry import stage
from cai.stage_api import StageContext
from cai import launch
from cai.training import common, examples, lora, mixture, samples
from cai.training.mixture import MixturePart

FORMATS = ("prompt_completion", "messages")


@dataclass
class SftInputs:
    model: str = "models.base"
    """Where training starts: a model role, or a node that produced a model."""


@dataclass
class SftConfig(common.TrainingConfig):
    kind: str = "sft"
    inputs: SftInputs = field(default_factory=SftInputs)
    mixture: List[MixturePart] = field(default_factory=lambda: [MixturePart("sl_data")])
    trainer: Dict[str, Any] = field(default_factory=lambda: common.trainer_defaults(
        **common.COSINE_WARMUP, learning_rate=2.0e-5, max_length=512))
    """Any trl.SFTConfig field, checked at plan time (a typo or wrong type fails, naming the key)."""
    format: str = "prompt_completion"
    """prompt_completion: loss on the final assistant reply only (TRL's completion-only loss);
    messages: loss on every token of the conversation."""
    column: str = "messages"
    """Column holding the conversation in URI sources (`?field=` in the URI wins); node artifacts use `messages`."""


def check(node_cfg, where: str) -> None:
    """Plan-time: format, launcher, mixture, LoRA, and SFTConfig built from `trainer`."""
    from trl.trainer.sft_config import SFTConfig

    if node_cfg.format not in FORMATS:
        raise CaiError(f"{where}.format: {node_cfg.format!r} unknown; available: {', '.join(FORMATS)}")
    common.check_common(node_cfg, where, SFTConfig)


@stage("sft", schema=SftConfig, version=1, produces="model",
       consumes={"model": ("model",), "mixture": ("conversations", "data")}, refs=mixture.mixture_refs, check=check)
def sft(ctx: StageContext) -> Dict[str, Any]:
    """Train (in the process the node's launcher picks) and return the metrics."""
    return launch.run(ctx, "cai.stages.sft:train")


def load_examples(ctx: StageContext) -> mixture.Mixture:
    """The weighted mixture of every source's usable conversations."""
    parts, unusable = [], {}
    for i, part in enumerate(ctx.cfg.mixture):
        inp = ctx.inputs[f"mixture.{i}"]
        column = "messages" if inp.kind == "node" else sources.parse_uri(inp.target).options.get("field", ctx.cfg.column)
        rows = mixture.read_source(inp)
        found = [examples.sft_example(r.get(column) if isinstance(r, dict) else None, ctx.cfg.format,
                                      ctx.inputs["model"].spec.system_prompt) for r in rows]
        usable = [e for e in found if e]
        if not usable:
            raise CaiError(f"pipeline.{ctx.node}.mixture.{i}: no conversations ending in an assistant turn in "
                           f"column {column!r} of {part.source!r} ({len(rows)} rows)")
        unusable[part.source] = len(rows) - len(usable)
        parts.append((part.source, usable, part.weight))
    mixed = mixture.mix(parts, ctx.seed, ctx.cfg.eval_fraction, ctx.cfg.eval_max)
    for source in mixed.sources:
        source["unusable"] = unusable[source["source"]]
    return mixed


def train(ctx: StageContext) -> Dict[str, Any]:
    """The stage body: SFTTrainer on the mixture, held-out loss before and after, the model saved into model/."""
    mixed = load_examples(ctx)  # first: a data error fails before TRL's slow import
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from cai.models import load_tokenizer

    args = common.trainer_config(SFTConfig, ctx)
    spec = ctx.inputs["model"].spec
    tokenizer = load_tokenizer(spec, ctx.home, padding_side="right")
    trainer = SFTTrainer(model=lora.load_model(spec, ctx.home, common.train_dtype(ctx.cfg, spec)), args=args,
                         train_dataset=Dataset.from_list(mixed.train),
                         eval_dataset=Dataset.from_list(mixed.eval) if mixed.eval else None,
                         processing_class=tokenizer, peft_config=lora.peft_config(ctx.cfg.lora))
    fitted = common.fit(trainer, ctx)
    model_dir = common.finish(trainer, tokenizer, ctx, spec)
    main = trainer.is_world_process_zero()
    del trainer  # free the training copy before the saved model is reloaded for samples
    metrics = summarize(fitted, mixed)
    if main:
        held_out = mixed.eval[:ctx.cfg.num_samples]
        prompts = [e["prompt"] if "prompt" in e else e["messages"][:-1] for e in held_out]
        answers = common.answer_samples(ctx, model_dir, spec, prompts)
        references = [(e["completion"] if "completion" in e else e["messages"][-1:])[0]["content"] for e in held_out]
        samples.write_samples(ctx, metrics, ["loss"], prompts, answers, {"reference": references})
    return metrics


def summarize(fitted: Dict[str, Any], mixed: mixture.Mixture) -> Dict[str, Any]:
    """metrics.json: the headline losses first, then counts, the loss curve and TRL's log history."""
    before, after = fitted["eval_before"], fitted["eval_after"]
    return {"train_loss": fitted["train_loss"], "eval_loss_before": before.get("eval_loss"),
            "eval_loss": after.get("eval_loss"), "steps": fitted["steps"], "resumed_from": fitted["resumed_from"],
            "train_examples": len(mixed.train), "eval_examples": len(mixed.eval), "mixture": mixed.sources,
            "train_runtime_s": fitted["train_runtime_s"],
            **{k: fitted[k] for k in ("device", "bf16", "processes")}, "eval_before": before, "eval_after": after,
            "loss_curve": common.curve(fitted["log_history"], ["loss", "grad_norm", "learning_rate"]),
            "log_history": fitted["log_history"]}
