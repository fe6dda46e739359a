"""Direct preference optimization, as the Hugging Face open-CAI recipe does after SFT: TRL's DPOTrainer on SL-CAI
pairs (revision chosen over the initial answer), labeled preferences, and preference datasets, mixed by weight."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from cai import launch
from cai.errors import CaiError
from cai.registry import stage
from cai.stage_api import StageContext, log
from cai.training import common, lora, mixture, samples
from cai.training.pairs import load_pairs
from cai.training.mixture import MixturePart

# TRL 1.16 losses that read `label_smoothing`; its `sigmoid` loss ignores it (dpo_trainer.py, loss_type branches).
# `robust` is the unbiased DPO under label flips with known rate eps (Chowdhury et al. 2024): eps = 1 - p_chosen.
SMOOTHED_LOSSES = ("robust", "exo_pair", "aot", "aot_unpaired")


@dataclass
class DpoInputs:
    model: str = "sft"
    """The policy to start from (usually the sft node); with LoRA the reference is it with adapters disabled."""


@dataclass
class DpoConfig(common.TrainingConfig):
    kind: str = "dpo"
    inputs: DpoInputs = field(default_factory=DpoInputs)
    mixture: List[MixturePart] = field(default_factory=lambda: [MixturePart("sl_data")])
    """Sources of prompt/chosen/rejected: SL-CAI conversations (revision over initial answer), preferences, URIs."""
    trainer: Dict[str, Any] = field(default_factory=lambda: common.trainer_defaults(
        **common.COSINE_WARMUP, learning_rate=5.0e-7, max_length=1024))
    """Any trl.DPOConfig field (loss_type, precompute_ref_log_probs, ...), checked at plan time."""
    min_p_chosen: Optional[float] = None
    """Drop labeled pairs whose p_chosen (from label_preferences) is below this; unlabeled pairs count as 1."""
    soft_labels: bool = False
    """Use the soft labels: label_smoothing = mean(1 - p_chosen), loss_type robust unless another smoothed loss
    is set in `trainer`."""
    max_prompt_length: Optional[int] = None
    """Drop pairs whose prompt has more tokens (TRL 1.16 dropped its own max_prompt_length)."""
    beta: Optional[float] = None
    """DPOConfig.beta (the implicit KL strength); a stage field like rl's `beta`, so `pipeline.rl.beta=...` sweeps
    work whichever stage is mounted at the node. null: DPOConfig's default (or `trainer.beta`)."""


def check(node_cfg, where: str) -> None:
    """Plan-time: label options, launcher, mixture, LoRA, and DPOConfig built from `trainer`."""
    from trl.trainer.dpo_config import DPOConfig

    if node_cfg.min_p_chosen is not None and not 0 <= node_cfg.min_p_chosen <= 1:
        raise CaiError(f"{where}.min_p_chosen: must be in [0, 1], got {node_cfg.min_p_chosen}")
    if node_cfg.soft_labels:
        trainer = node_cfg.trainer
        if "label_smoothing" in trainer:
            raise CaiError(f"{where}.trainer.label_smoothing: set by soft_labels=true (mean 1 - p_chosen); drop one")
        losses = trainer.get("loss_type", ["robust"])
        losses = [losses] if isinstance(losses, str) else list(losses)
        if not set(losses) & set(SMOOTHED_LOSSES):
            raise CaiError(f"{where}.soft_labels: loss_type {losses} ignores label_smoothing in TRL 1.16; use one "
                           f"of {', '.join(SMOOTHED_LOSSES)}")
    if node_cfg.beta is not None and "beta" in node_cfg.trainer:
        raise CaiError(f"{where}.trainer.beta: set {where}.beta instead (both are set)")
    common.check_common(node_cfg, where, DPOConfig, **beta_option(node_cfg))


def beta_option(node_cfg) -> Dict[str, Any]:
    """The stage-level beta as a DPOConfig argument, when set."""
    return {} if node_cfg.beta is None else {"beta": node_cfg.beta}


@stage("dpo", schema=DpoConfig, version=1, produces="model",
       consumes={"model": ("model",), "mixture": ("conversations", "preferences", "data")},
       refs=mixture.mixture_refs, check=check)
def dpo(ctx: StageContext) -> Dict[str, Any]:
    """Train (in the process the node's launcher picks) and return the metrics."""
    return launch.run(ctx, "cai.stages.dpo:train")


def fit_prompt_length(pairs: List[dict], tokenizer, limit: Optional[int], dropped: Dict[str, int]) -> List[dict]:
    """Pairs whose templated prompt fits `limit` tokens."""
    if limit is None:
        return pairs
    fits = [p for p in pairs if len(tokenizer.apply_chat_template(p["prompt"], add_generation_prompt=True,
                                                                   tokenize=True, return_dict=False)) <= limit]
    if len(fits) < len(pairs):
        dropped["prompt_too_long"] = dropped.get("prompt_too_long", 0) + len(pairs) - len(fits)
    return fits


def label_options(ctx: StageContext, pairs: List[dict]) -> Dict[str, Any]:
    """DPOConfig defaults from the labels: soft labels become label smoothing for a smoothed loss."""
    if not ctx.cfg.soft_labels:
        return {}
    eps = sum(1.0 - (p["p_chosen"] if p["p_chosen"] is not None else 1.0) for p in pairs) / len(pairs)
    if eps >= 0.5:
        raise CaiError(f"pipeline.{ctx.node}.soft_labels: mean 1 - p_chosen is {eps:.3f}; the labels prefer the "
                       f"rejected answers on average (need < 0.5)")
    log.info("%s: soft labels: label_smoothing = mean(1 - p_chosen) = %.4f", ctx.node, eps)
    return {"label_smoothing": eps, "loss_type": ["robust"]}


def as_dataset(pairs: List[dict]):
    """TRL's conversational preference columns only."""
    from datasets import Dataset

    return Dataset.from_list([{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs])


def train(ctx: StageContext) -> Dict[str, Any]:
    """The stage body: DPOTrainer on the mixed pairs, held-out reward accuracy and margins before and after."""
    mixed, dropped = load_pairs(ctx)  # first: a data error fails before TRL's slow import
    from trl import DPOConfig, DPOTrainer

    from cai.models import load_tokenizer

    spec = ctx.inputs["model"].spec
    tokenizer = load_tokenizer(spec, ctx.home, padding_side="right")
    train_pairs = fit_prompt_length(mixed.train, tokenizer, ctx.cfg.max_prompt_length, dropped)
    eval_pairs = fit_prompt_length(mixed.eval, tokenizer, ctx.cfg.max_prompt_length, dropped)
    args = common.trainer_config(DPOConfig, ctx, **label_options(ctx, train_pairs), **beta_option(ctx.cfg))
    dtype = common.train_dtype(ctx.cfg, spec)
    peft = lora.peft_config(ctx.cfg.lora)
    # Without LoRA the reference is a frozen copy of the start model; with LoRA, TRL disables the adapters instead.
    trainer = DPOTrainer(model=lora.load_model(spec, ctx.home, dtype), args=args,
                         ref_model=None if peft else lora.load_model(spec, ctx.home, dtype),
                         train_dataset=as_dataset(train_pairs), eval_dataset=as_dataset(eval_pairs) if eval_pairs
                         else None, processing_class=tokenizer, peft_config=peft)
    fitted = common.fit(trainer, ctx)
    model_dir = common.finish(trainer, tokenizer, ctx, spec)
    main = trainer.is_world_process_zero()
    del trainer
    metrics = summarize(fitted, mixed, dropped, len(train_pairs), len(eval_pairs), args.label_smoothing)
    if main:
        held_out = eval_pairs[:ctx.cfg.num_samples]
        answers = common.answer_samples(ctx, model_dir, spec, [p["prompt"] for p in held_out])
        samples.write_samples(ctx, metrics, ["loss", "rewards/accuracies", "rewards/margins"],
                             [p["prompt"] for p in held_out], answers,
                             {"chosen": [p["chosen"][-1]["content"] for p in held_out],
                              "rejected": [p["rejected"][-1]["content"] for p in held_out]})
    return metrics


def summarize(fitted: Dict[str, Any], mixed: mixture.Mixture, dropped: Dict[str, int], n_train: int, n_eval: int,
              label_smoothing: float) -> Dict[str, Any]:
    """metrics.json: held-out reward accuracy and margin first, then losses, counts and the training curve."""
    before, after = fitted["eval_before"], fitted["eval_after"]
    return {"eval_reward_accuracy": after.get("eval_rewards/accuracies"),
            "eval_reward_margin": after.get("eval_rewards/margins"), "train_loss": fitted["train_loss"],
            "eval_loss": after.get("eval_loss"), "eval_reward_accuracy_before": before.get("eval_rewards/accuracies"),
            "eval_loss_before": before.get("eval_loss"), "steps": fitted["steps"],
            "resumed_from": fitted["resumed_from"], "train_examples": n_train, "eval_examples": n_eval,
            "dropped_pairs": sum(dropped.values()), "dropped": dropped, "label_smoothing": label_smoothing,
            "mixture": mixed.sources, "train_runtime_s": fitted["train_runtime_s"],
            **{k: fitted[k] for k in ("device", "bf16", "processes")}, "eval_before": before,
            "eval_after": after, "curve": common.curve(fitted["log_history"], ["loss", "rewards/accuracies",
                                                                             "rewards/margins", "learning_rate"]),
            "log_history": fitted["log_history"]}
