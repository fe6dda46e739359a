"""RL against the preference model, the last step of RL-CAI (Bai et al. 2022, sec. 4): TRL's RLOOTrainer (default) or
GRPOTrainer, the policy starting from SFT, the reward from the reward_model artifact, a KL penalty to the starting
policy (`beta`), on a weighted mixture of prompts. TRL 1.16 has no PPOTrainer (removed upstream)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

from cai.errors import CaiError
from cai.registry import stage
from cai.stage_api import StageContext
from cai import launch
from cai.training import common, lora, mixture, prompts, samples
from cai.training.mixture import MixturePart

# algorithm -> (module, config class, trainer class)
ALGORITHMS = {"rloo": ("trl.trainer.rloo_config", "RLOOConfig", "RLOOTrainer"),
              "grpo": ("trl.trainer.grpo_config", "GRPOConfig", "GRPOTrainer")}
STAGE_KEYS = ("beta", "num_generations")  # stage fields, passed to the TRL config by the stage
CURVE = ["loss", "reward", "reward_std", "kl", "completions/mean_length", "entropy", "learning_rate"]


@dataclass
class RlInputs:
    model: str = "sft"
    """The policy to start from (usually the sft node); the KL reference is this same model, frozen."""
    reward: str = "rm"
    """A node that produced a reward_model."""


@dataclass
class RlConfig(common.TrainingConfig):
    kind: str = "rl"
    inputs: RlInputs = field(default_factory=RlInputs)
    mixture: List[MixturePart] = field(default_factory=lambda: [MixturePart("prefs")])
    """Prompt sources: preference / pair / conversation artifacts, or URIs (cai://redteam, ...)."""
    trainer: Dict[str, Any] = field(default_factory=lambda: common.trainer_defaults(
        learning_rate=1.0e-6, max_completion_length=64, temperature=1.0))
    """Any field of trl.RLOOConfig / GRPOConfig (per `algorithm`), checked at plan time. Completions default to 64
    tokens (recipes raise it: hh_mistral 512); per_device_train_batch_size counts completions (8 / num_generations
    prompts) and per_device_eval_batch_size must be a multiple of num_generations."""
    algorithm: str = "rloo"
    """rloo (REINFORCE leave-one-out) | grpo (group-normalized advantages, clipped objective)."""
    beta: float = 0.05
    """KL coefficient to the starting policy (a reward penalty in RLOO, a loss term in GRPO); 0 drops the reference."""
    num_generations: int = 4
    """Completions sampled per prompt; the baseline of each is the others' mean reward (at least 2)."""


def config_class(algorithm: str, where: str) -> type:
    """The TRL config class for `algorithm`, with a clear error for unknown ones and for PPO."""
    if algorithm == "ppo":
        import trl

        why = (f"TRL {trl.__version__} has no PPOTrainer (removed upstream)" if not hasattr(trl, "PPOTrainer") else
               f"cai drives TRL {trl.__version__}'s PPOTrainer nowhere (it needs a value model and another API)")
        raise CaiError(f"{where}.algorithm: 'ppo' is not available: {why}; use {' or '.join(ALGORITHMS)}")
    if algorithm not in ALGORITHMS:
        raise CaiError(f"{where}.algorithm: {algorithm!r} unknown; available: {', '.join(ALGORITHMS)}")
    module, name, _ = ALGORITHMS[algorithm]
    return getattr(importlib.import_module(module), name)


def check(node_cfg, where: str) -> None:
    """Plan-time: algorithm, beta, stage-owned keys, launcher, mixture, LoRA, the TRL config built from `trainer`
    (batch sizes against num_generations included)."""
    config_cls = config_class(node_cfg.algorithm, where)
    if node_cfg.beta < 0:
        raise CaiError(f"{where}.beta: must be >= 0, got {node_cfg.beta}")
    for key in STAGE_KEYS:
        if key in node_cfg.trainer:
            raise CaiError(f"{where}.trainer.{key}: set {where}.{key} instead (a stage field, swept and keyed as one)")
    args = common.check_common(node_cfg, where, config_cls, beta=node_cfg.beta, num_generations=node_cfg.num_generations)
    group = args.num_generations_eval or args.num_generations
    if node_cfg.eval_fraction > 0 and args.per_device_eval_batch_size % group:
        # TRL checks this only with an eval strategy; the stage always evaluates before and after training
        raise CaiError(f"{where}.trainer.per_device_eval_batch_size: {args.per_device_eval_batch_size} must be a "
                       f"multiple of the {group} generations per held-out prompt (or set {where}.eval_fraction=0)")


@stage("rl", schema=RlConfig, version=1, produces="model",
       consumes={"model": ("model",), "reward": ("reward_model",),
                 "mixture": ("pairs", "preferences", "conversations", "data")},
       refs=mixture.mixture_refs, check=check)
def rl(ctx: StageContext) -> Dict[str, Any]:
    """Train (in the process the node's launcher picks) and return the metrics."""
    return launch.run(ctx, "cai.stages.rl:train")


def as_dataset(chats: List[List[dict]]):
    """TRL's conversational prompt-only column."""
    from datasets import Dataset

    return Dataset.from_list([{"prompt": chat} for chat in chats])


def build_trainer(ctx: StageContext, mixed: mixture.Mixture) -> Tuple[Any, Any]:
    """The TRL trainer for `algorithm`, with the reward model loaded from its artifact; and the policy tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from cai.models import load_tokenizer

    config_cls = config_class(ctx.cfg.algorithm, f"pipeline.{ctx.node}")
    trainer_cls = getattr(importlib.import_module("trl"), ALGORITHMS[ctx.cfg.algorithm][2])
    spec = ctx.inputs["model"].spec
    args = common.trainer_config(config_cls, ctx, beta=ctx.cfg.beta, num_generations=ctx.cfg.num_generations)
    tokenizer = load_tokenizer(spec, ctx.home, padding_side="left")
    reward_dir = ctx.inputs["reward"].path / "model"
    dtype = common.train_dtype(ctx.cfg, spec)
    # Without LoRA, TRL loads the KL reference from the policy's folder (config._name_or_path); with LoRA it is the
    # policy with the adapter disabled. Loaded here, the reward model follows the policy's dtype.
    trainer = trainer_cls(
        model=lora.load_model(spec, ctx.home, dtype), reward_funcs=AutoModelForSequenceClassification.from_pretrained(
            reward_dir, num_labels=1, dtype=dtype), args=args, train_dataset=as_dataset(mixed.train),
        eval_dataset=as_dataset(mixed.eval) if mixed.eval else None, processing_class=tokenizer,
        reward_processing_classes=AutoTokenizer.from_pretrained(reward_dir), peft_config=lora.peft_config(ctx.cfg.lora))
    return trainer, tokenizer


def train(ctx: StageContext) -> Dict[str, Any]:
    """The stage body: RL on the prompt mixture, held-out reward before and after, the policy saved into model/."""
    spec = ctx.inputs["model"].spec
    mixed, counts = prompts.load(ctx, spec.system_prompt)  # first: a data error fails before TRL's slow import
    trainer, tokenizer = build_trainer(ctx, mixed)
    fitted = common.fit(trainer, ctx)
    model_dir = common.finish(trainer, tokenizer, ctx, spec)
    main = trainer.is_world_process_zero()
    del trainer
    metrics = summarize(ctx, fitted, mixed, counts)
    if main:
        from cai.training.reward_trainer import score

        held_out = (mixed.eval or mixed.train)[:ctx.cfg.num_samples]
        answers = common.answer_samples(ctx, model_dir, spec, held_out)
        rewards = score(ctx.inputs["reward"].path / "model",
                        [p + [{"role": "assistant", "content": a.strip()}] for p, a in zip(held_out, answers)])
        samples.write_samples(ctx, metrics, ["loss", "reward", "kl", "completions/mean_length"], held_out, answers,
                             {"reward of the trained answer": [f"{r:.4g}" for r in rewards]})
    return metrics


def summarize(ctx: StageContext, fitted: Dict[str, Any], mixed: mixture.Mixture,
              counts: Dict[str, int]) -> Dict[str, Any]:
    """metrics.json: final reward, KL and completion length, held-out reward before and after, then the curves."""
    curve = common.curve(fitted["log_history"], CURVE)
    first, last = (curve[0], curve[-1]) if curve else ({}, {})
    before, after = fitted["eval_before"], fitted["eval_after"]
    return {"final_reward": last.get("reward"), "final_kl": last.get("kl"),
            "final_completion_length": last.get("completions/mean_length"), "first_reward": first.get("reward"),
            "eval_reward_before": before.get("eval_reward"), "eval_reward": after.get("eval_reward"),
            "eval_kl": after.get("eval_kl"), "train_loss": fitted["train_loss"], "steps": fitted["steps"],
            "resumed_from": fitted["resumed_from"], "algorithm": ctx.cfg.algorithm, "beta": ctx.cfg.beta,
            "num_generations": ctx.cfg.num_generations, "train_prompts": len(mixed.train),
            "eval_prompts": len(mixed.eval), "distinct_prompts": counts, "mixture": mixed.sources,
            "train_runtime_s": fitted["train_runtime_s"], **{k: fitted[k] for k in ("device", "bf16", "processes")},
            "eval_before": before, "eval_after": after, "curve": curve, "log_history": fitted["log_history"]}
