"""What the training stages share: their common config fields, TRL arguments from the pass-through dict, resume
from the last checkpoint in the workdir, before/after held-out evaluation, metrics, the artifact and samples.md."""
from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import yaml

from cai import launch
from cai.errors import CaiError
from cai.models import DTYPES as MODEL_DTYPES
from cai.registry import get_engine
from cai.stage_api import StageConfig, StageContext, log
from cai.store import read_json, write_json
from cai.training import lora, mixture, trainer_args
from cai.training.lora import LoraOptions
from cai.training.mixture import MixturePart

# ModelSpec fields a trained artifact inherits from the model it started from (source and path are the artifact's;
# the engine and its options only from an engine that runs local weights, see `inherited_spec`).
INHERITED_SPEC = ("dtype", "quantize", "chat_template", "system_prompt", "trust_remote_code", "max_batch_tokens",
                  "max_batch_size")
DTYPES = (None, *MODEL_DTYPES)  # null: the model spec's own dtype


COSINE_WARMUP = {"lr_scheduler_type": "cosine", "warmup_steps": 0.1}
"""The schedule of the supervised and preference stages: cosine decay after a warm-up of 10% of the steps."""


def trainer_defaults(**stage_specific: Any) -> Dict[str, Any]:
    """The TRL arguments every training stage starts from (recipes and the command line override any of them):
    one epoch, batches of 8, a log line per step, and checkpoints every 50 steps (2 kept) in the workdir, so a
    killed run resumes."""
    shared = {"num_train_epochs": 1, "per_device_train_batch_size": 8, "per_device_eval_batch_size": 8,
              "logging_steps": 1, "save_steps": 50, "save_total_limit": 2}
    return {**shared, **stage_specific}


@dataclass
class TrainingConfig(StageConfig):
    """Fields every training stage has; sft, dpo, reward_model and rl extend it."""

    num_samples: int = 4
    """Held-out prompts the trained model answers (or pairs it scores) in samples.md: each costs a generation."""
    mixture: List[MixturePart] = field(default_factory=list)
    """Weighted training sources: [{source: sl_data, weight: 1.0}, {source: "hf://...", weight: 0.1}]."""
    trainer: Dict[str, Any] = field(default_factory=dict)
    """Passed through to TRL's config class (SFTConfig / DPOConfig); checked at plan time."""
    lora: LoraOptions = field(default_factory=LoraOptions)
    launcher: str = "subprocess"
    """inprocess | subprocess (a child process, memory freed after) | accelerate (not part of the key)."""
    accelerate_config: str = "cpu"
    """conf/accelerate/<name>.yaml used by launcher=accelerate: cpu, multi_cpu (2-process DDP on CPU), multi_gpu,
    fsdp, deepspeed_zero3."""
    machines: int = 1
    """Nodes the accelerate launcher spans (launcher=accelerate): > 1 runs one `accelerate launch` per node of the
    Slurm allocation through srun, machine rank and main address from the Slurm environment. Not part of the key,
    like `launcher` (though the world size sets the effective batch)."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, ~20-30% slower."""
    dtype: Optional[str] = None
    """Weights dtype while training; null: the model spec's under LoRA (frozen base), float32 master weights for
    full fine-tuning (bf16 autocast does the math where the hardware has it)."""
    eval_fraction: float = 0.1
    """Share of each source held out (seeded) for the eval loss before and after training."""
    eval_max: int = 200
    keep_checkpoints: bool = False
    """Keep <artifact>/checkpoints (optimizer states: large) after training finishes."""
    sample_max_new_tokens: int = 64
    """Length of the greedy answers to `num_samples` held-out prompts in samples.md."""


def check_common(node_cfg, where: str, config_cls: type, **extra) -> Any:
    """Launcher, mixture, LoRA and the TRL config built from `trainer`, as the stage would build it (`extra`:
    stage-derived arguments, e.g. beta); returns that config."""
    from omegaconf import OmegaConf

    launch.check_launcher(node_cfg, where)
    mixture.check_mixture(node_cfg, where)
    lora.check_lora(node_cfg.lora, where)
    if node_cfg.dtype not in DTYPES:
        raise CaiError(f"{where}.dtype: {node_cfg.dtype!r} unknown; available: null, {', '.join(DTYPES[1:])}")
    if not 0 <= node_cfg.eval_fraction < 1:
        raise CaiError(f"{where}.eval_fraction: must be in [0, 1), got {node_cfg.eval_fraction}")
    trainer = {**extra, **OmegaConf.to_container(node_cfg.trainer, resolve=True)}
    args = trainer_args.build(config_cls, trainer, f"{where}.trainer", hardware_defaults(0),
                              stage_fixed(node_cfg, Path("WORKDIR"), config_cls))
    check_report_to(args, f"{where}.trainer.report_to")
    return args


def check_report_to(args: Any, where: str) -> None:
    """An integration TRL would report to must be installed (else the Trainer fails after the model loaded)."""
    from transformers.integrations import get_available_reporting_integrations

    available = set(get_available_reporting_integrations())
    missing = [r for r in (args.report_to or []) if r not in available and r != "none"]
    if missing:
        raise CaiError(f"{where}: {', '.join(missing)} is not installed (pip install {' '.join(missing)}); "
                       f"available here: {', '.join(sorted(available)) or 'none'}")


def hardware_defaults(seed: int) -> Dict[str, Any]:
    """Defaults the `trainer` dict may override: bf16 where the GPU or CPU computes it, CPU when there is no GPU."""
    import torch

    from cai.models import cpu_has_bf16

    cuda = torch.cuda.is_available()
    return {"bf16": torch.cuda.is_bf16_supported() if cuda else cpu_has_bf16(), "use_cpu": not cuda,
            "report_to": "none", "seed": seed, "save_strategy": "steps"}


def stage_fixed(node_cfg, workdir: Path, config_cls: type) -> Dict[str, Any]:
    """Arguments the stage owns: checkpoints in the workdir (resume), checkpointing from the stage field."""
    from cai.compat import checkpointing_arg

    return {"output_dir": str(workdir / "checkpoints"), checkpointing_arg(config_cls): node_cfg.gradient_checkpointing}


def trainer_config(config_cls: type, ctx: StageContext, **extra) -> Any:
    """The TRL config for this run (`extra` are stage-derived defaults, e.g. DPO's label smoothing)."""
    from omegaconf import OmegaConf

    trainer = {**extra, **OmegaConf.to_container(ctx.cfg.trainer, resolve=True)}
    args = trainer_args.build(config_cls, trainer, f"pipeline.{ctx.node}.trainer", hardware_defaults(ctx.seed),
                              stage_fixed(ctx.cfg, ctx.workdir, config_cls))
    if "tensorboard" in (args.report_to or []):
        # events go into the artifact, not under checkpoints/ (dropped after training); read when the Trainer starts
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(ctx.workdir / "tensorboard")
    return args


def train_dtype(cfg, spec) -> Any:
    """Frozen LoRA bases train in the spec's dtype; full fine-tuning keeps float32 master weights by default."""
    import torch

    from cai.models import resolve_dtype

    if cfg.dtype:
        return resolve_dtype(cfg.dtype)
    return resolve_dtype(spec.dtype) if cfg.lora.enabled else torch.float32


def last_checkpoint(folder: Path) -> Optional[Path]:
    """The newest complete checkpoint (trainer_state.json is written last); torn ones from a kill are removed."""
    found = [p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    for path in sorted(found, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        if (path / "trainer_state.json").is_file():
            return path
        log.warning("dropping incomplete %s (interrupted while saving)", path.name)
        shutil.rmtree(path, ignore_errors=True)
    return None


@contextlib.contextmanager
def unchanged_rng() -> Iterator[None]:
    """Leave the random generators as they were (torch CPU and CUDA, numpy, random): an evaluation draws from them
    (each DataLoader iterator takes a seed), and the training sampler's shuffle is drawn from what is left."""
    import random

    import numpy
    import torch

    states = random.getstate(), numpy.random.get_state()
    with torch.random.fork_rng(devices=range(torch.cuda.device_count()) if torch.cuda.is_available() else []):
        yield
    random.setstate(states[0])
    numpy.random.set_state(states[1])


def fit(trainer: Any, ctx: StageContext) -> Dict[str, Any]:
    """Evaluate, train (resuming from the last checkpoint), evaluate again; return metrics and the log history."""
    before_file = ctx.workdir / "eval_before.json"
    has_eval = trainer.eval_dataset is not None and len(trainer.eval_dataset) > 0
    if has_eval and not before_file.is_file():  # kept in the workdir so a resumed run does not redo it
        with unchanged_rng():  # a resumed run skips it: train() must start from the same random state either way
            write_json(before_file, trainer.evaluate())
    resume = last_checkpoint(ctx.workdir / "checkpoints")
    if resume:
        log.info("%s: resuming from %s", ctx.node, resume.name)
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    after = trainer.evaluate() if has_eval else {}
    before = read_json(before_file) if has_eval else {}
    return {"train_loss": result.training_loss, "steps": result.global_step,
            "resumed_from": resume.name if resume else None, "train_runtime_s": result.metrics.get("train_runtime"),
            "device": str(trainer.args.device), "bf16": trainer.args.bf16, "processes": trainer.args.world_size,
            "eval_before": before, "eval_after": after, "log_history": trainer.state.log_history}


def curve(history: List[Dict[str, Any]], keys: List[str]) -> List[Dict[str, Any]]:
    """The training log as `{step, key: value}` rows (the loss curve, and DPO reward accuracy and margins)."""
    return [{"step": h["step"], **{k: h[k] for k in keys if k in h}} for h in history if "loss" in h]


def finish(trainer: Any, tokenizer: Any, ctx: StageContext, spec) -> Path:
    """Save model/ and model_spec.yaml, then drop the checkpoints (unless kept); returns model/."""
    out = ctx.workdir / "model"
    lora.save_model(trainer, tokenizer, out, ctx.cfg.lora)
    if trainer.is_world_process_zero():
        inherited = inherited_spec(spec)
        (ctx.workdir / "model_spec.yaml").write_text(
            f"# How to load the model {ctx.node} trained (source/path are filled in by the runner)\n"
            + yaml.safe_dump(inherited, sort_keys=False))
        if not ctx.cfg.keep_checkpoints:
            shutil.rmtree(ctx.workdir / "checkpoints", ignore_errors=True)
    return out


def inherited_spec(spec) -> Dict[str, Any]:
    """What a model trained from `spec` keeps of it: loading options, and the engine when that engine runs local
    weights (vLLM does; a server engine does not: the new weights are not on the server, so the artifact runs on hf)."""
    from omegaconf import OmegaConf

    inherited = {k: spec[k] for k in INHERITED_SPEC if k in spec}
    if get_engine(spec.engine).capabilities(spec).local_weights:
        inherited["engine"] = spec.engine
        inherited["engine_options"] = OmegaConf.to_container(spec.engine_options, resolve=True)
    return inherited


def answer_samples(ctx: StageContext, model_dir: Path, spec, chats: List[List[dict]]) -> List[str]:
    """The saved model (reloaded from disk, as a consumer would, on the engine it will run on) answers a few
    held-out prompts, greedily."""
    from omegaconf import OmegaConf

    from cai.keys import example_seeds
    from cai.schema import ModelSpec, Sampling

    if not chats:
        return []
    loaded = OmegaConf.merge(OmegaConf.structured(ModelSpec), inherited_spec(spec),
                             {"source": "local", "path": str(model_dir)})
    sampling = Sampling(do_sample=False, max_new_tokens=ctx.cfg.sample_max_new_tokens)
    with get_engine(loaded.engine).factory(loaded, ctx.home) as engine:
        return engine.generate(chats, sampling, example_seeds(ctx.seed, map(str, range(len(chats))), "sample"))
