"""The RL-CAI preference model (Bai et al. 2022, sec. 4.1): a one-output sequence classifier trained on the feedback
model's soft labels (p_chosen) with the soft Bradley-Terry loss, harmlessness labels mixed by weight with helpfulness
preferences; TRL's RewardTrainer, extended (cai.training.reward_trainer). Other preference sources count as p = 1."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from cai.errors import CaiError
from cai.registry import stage
from cai.stage_api import StageContext
from cai import launch
from cai.training import common, examples, lora, mixture
from cai.training.pairs import load_pairs
from cai.training.mixture import MixturePart

# samples.md opens with these metrics
HEADLINE = ("eval_reward_accuracy_before", "eval_reward_accuracy", "eval_ece_before", "eval_ece", "eval_reward_margin",
            "eval_loss_before", "eval_loss", "train_loss", "steps", "train_examples", "eval_examples", "dropped_pairs")


@dataclass
class RewardModelInputs:
    model: str = "sft"
    """Where the reward model starts: a model role or a node that produced a model (its body; a new score head)."""


@dataclass
class RewardModelConfig(common.TrainingConfig):
    kind: str = "reward_model"
    inputs: RewardModelInputs = field(default_factory=RewardModelInputs)
    mixture: List[MixturePart] = field(default_factory=lambda: [MixturePart("prefs")])
    """Preference sources: labeled prefs (soft p_chosen), SL-CAI pairs or URIs (p = 1)."""
    trainer: Dict[str, Any] = field(default_factory=lambda: common.trainer_defaults(
        **common.COSINE_WARMUP, learning_rate=1.0e-5, max_length=1024))
    """Any trl.RewardConfig field (max_length, center_rewards_coefficient, ...), checked at plan time."""
    soft_labels: bool = True
    """Train on p_chosen (the soft Bradley-Terry loss); false: every pair as p = 1 (TRL's hard loss)."""
    min_p_chosen: Optional[float] = None
    """Drop labeled pairs whose p_chosen is below this; unlabeled pairs count as 1."""
    calibration_bins: int = 10
    """Equal-width bins of sigmoid(r_chosen - r_rejected) for the held-out ECE."""


def check(node_cfg, where: str) -> None:
    """Plan-time: label options, a merged artifact, launcher, mixture, LoRA, and RewardConfig from `trainer`."""
    from trl.trainer.reward_config import RewardConfig

    if node_cfg.min_p_chosen is not None and not 0 <= node_cfg.min_p_chosen <= 1:
        raise CaiError(f"{where}.min_p_chosen: must be in [0, 1], got {node_cfg.min_p_chosen}")
    if node_cfg.calibration_bins < 1:
        raise CaiError(f"{where}.calibration_bins: need at least 1, got {node_cfg.calibration_bins}")
    if node_cfg.lora.enabled and not node_cfg.lora.merge:
        # TRL's RLOO/GRPO load reward_funcs with plain from_pretrained: the artifact must be one model folder
        raise CaiError(f"{where}.lora.merge: reward models are saved merged (RL loads them as plain models); "
                       f"set it to true")
    common.check_common(node_cfg, where, RewardConfig)


@stage("reward_model", schema=RewardModelConfig, version=1, produces="reward_model",
       consumes={"model": ("model",), "mixture": ("conversations", "preferences", "data")},
       refs=mixture.mixture_refs, check=check)
def reward_model(ctx: StageContext) -> Dict[str, Any]:
    """Train (in the process the node's launcher picks) and return the metrics."""
    return launch.run(ctx, "cai.stages.reward_model:train")


def as_dataset(pairs: List[dict], soft: bool, system_prompt: Optional[str]):
    """TRL's conversational preference columns plus the label (1.0 where a source has none, or labels are hard);
    the policy's system prompt is prepended, as RL will show it to the reward model."""
    from datasets import Dataset

    def row(pair: dict) -> dict:
        p = pair["p_chosen"] if soft and pair["p_chosen"] is not None else 1.0
        return {"prompt": examples.with_system(pair["prompt"], system_prompt), "chosen": pair["chosen"],
                "rejected": pair["rejected"], "p_chosen": float(p)}

    return Dataset.from_list([row(p) for p in pairs])


def train(ctx: StageContext) -> Dict[str, Any]:
    """The stage body: the soft-label RewardTrainer on the mixed pairs, calibration before and after, model/ saved."""
    mixed, dropped = load_pairs(ctx)  # first: a data error fails before TRL's slow import
    from transformers import set_seed
    from trl import RewardConfig

    from cai.models import load_tokenizer
    from cai.training.reward_trainer import SoftRewardTrainer, load_reward_model

    spec = ctx.inputs["model"].spec
    tokenizer = load_tokenizer(spec, ctx.home, padding_side="right")
    args = common.trainer_config(RewardConfig, ctx)
    soft, system = ctx.cfg.soft_labels, spec.system_prompt
    set_seed(args.seed)  # the new score head is drawn here, before the Trainer seeds: else it depends on the process
    trainer = SoftRewardTrainer(
        model=load_reward_model(spec, ctx.home, common.train_dtype(ctx.cfg, spec)), args=args,
        train_dataset=as_dataset(mixed.train, soft, system),
        eval_dataset=as_dataset(mixed.eval, soft, system) if mixed.eval else None, processing_class=tokenizer,
        peft_config=lora.peft_config(ctx.cfg.lora, task_type="SEQ_CLS"), calibration_bins=ctx.cfg.calibration_bins)
    fitted = common.fit(trainer, ctx)
    model_dir = common.finish(trainer, tokenizer, ctx, spec)
    main, table = trainer.is_world_process_zero(), trainer.last_calibration.get("table", [])
    del trainer
    metrics = summarize(fitted, mixed, dropped, table)
    if main:
        held_out = [dict(p, prompt=examples.with_system(p["prompt"], system)) for p in mixed.eval[:ctx.cfg.num_samples]]
        write_samples(ctx, metrics, model_dir, held_out)
    return metrics


def summarize(fitted: Dict[str, Any], mixed: mixture.Mixture, dropped: Dict[str, int],
              table: List[dict]) -> Dict[str, Any]:
    """metrics.json: held-out pairwise accuracy, calibration and margin first, then losses, counts and curves."""
    before, after = fitted["eval_before"], fitted["eval_after"]
    return {"eval_reward_accuracy": after.get("eval_pairwise_accuracy"), "eval_ece": after.get("eval_ece"),
            "eval_reward_margin": after.get("eval_mean_margin"),
            "eval_reward_accuracy_before": before.get("eval_pairwise_accuracy"),
            "eval_ece_before": before.get("eval_ece"), "train_loss": fitted["train_loss"],
            "eval_loss": after.get("eval_loss"), "eval_loss_before": before.get("eval_loss"), "steps": fitted["steps"],
            "resumed_from": fitted["resumed_from"], "train_examples": len(mixed.train),
            "eval_examples": len(mixed.eval), "dropped_pairs": sum(dropped.values()), "dropped": dropped,
            "mixture": mixed.sources, "train_runtime_s": fitted["train_runtime_s"],
            **{k: fitted[k] for k in ("device", "bf16", "processes")}, "calibration": table,
            "eval_before": before, "eval_after": after,
            "curve": common.curve(fitted["log_history"], ["loss", "accuracy", "margin", "p_chosen", "learning_rate"]),
            "log_history": fitted["log_history"]}


def write_samples(ctx: StageContext, metrics: Dict[str, Any], model_dir, pairs: List[dict]) -> None:
    """samples.md: headline metrics, the calibration table, and held-out pairs scored by the saved reward model."""
    from cai.training.calibration import sigmoid
    from cai.training.reward_trainer import score

    rewards = score(model_dir, [p["prompt"] + side for p in pairs for side in (p["chosen"], p["rejected"])])
    lines = [f"# {ctx.node}: reward_model", "", "| metric | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(metrics[k])} |" for k in HEADLINE if metrics.get(k) is not None]
    lines += ["", "## Held-out calibration: sigmoid(r_chosen - r_rejected) against p_chosen", "",
              "| bin | pairs | mean model p | mean label p |", "|---|---|---|---|"]
    lines += [f"| {r['low']:.1f}-{r['high']:.1f} | {r['count']} | {_fmt(r['p_model'])} | {_fmt(r['p_label'])} |"
              for r in metrics["calibration"] if r["count"]]
    lines += ["", f"## Held-out pairs scored by the trained reward model ({len(pairs)})", ""]
    for i, pair in enumerate(pairs):
        r_c, r_r = rewards[2 * i], rewards[2 * i + 1]
        label = 1.0 if pair["p_chosen"] is None else pair["p_chosen"]
        lines += [f"### {i + 1}  p_chosen={label:.3f}  model={sigmoid(r_c - r_r):.3f}", "",
                  f"**Prompt:** {pair['prompt'][-1]['content']}", "",
                  f"**Chosen (r={r_c:.3f}):** {pair['chosen'][-1]['content']}", "",
                  f"**Rejected (r={r_r:.3f}):** {pair['rejected'][-1]['content']}", ""]
    (ctx.workdir / "samples.md").write_text("\n".join(lines), encoding="utf-8")



def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
