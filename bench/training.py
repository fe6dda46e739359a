"""Training tokens/s of the sft and reward_model stages against TRL's defaults on the same data, and peak memory.

Every configuration trains the same model on the same examples for --steps optimizer steps in its own child process,
so each peak RSS is its own. Tokens are counted from the batches the collator actually built: real (non-padding)
tokens and the padded tensor size. Data, unless --sft-data / --pref-data name JSONL artifacts (`messages` rows; prefs
rows): the shipped cai://helpful and cai://redteam prompts with deterministic synthetic answers of 8-128 words
(log-uniform: padding-free batching and packing save what varying lengths pad); a preference pair gets two such
answers and a seeded p_chosen. A forward-only check compares padded and padding-free losses per attention kernel.
    python bench/training.py [--steps 4] [--examples 32] [--threads N] [--home DIR] [--skip-emulated-bf16]
TRL's own defaults (bf16=True) on a CPU without AVX-512 BF16/AMX run bf16 matmuls emulated, ~40x slower than fp32:
those two rows then take most of the run (many minutes per step); --skip-emulated-bf16 leaves them out.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# (stage, row name, trainer: "trl" = TRL's config class at its defaults, plus the arguments given | "stage" = built
#  as the stage builds it, with node overrides as dotted keys under pipeline.<node>)
CONFIGS = [
    ("sft", "TRL defaults", "trl", {}),
    ("sft", "TRL defaults, bf16=False", "trl", {"bf16": False}),
    ("sft", "stage (recipe)", "stage", {}),
    ("sft", "stage, full FT", "stage", {"lora.enabled": False, "trainer.learning_rate": 2e-5}),
    ("sft", "stage + padding_free", "stage", {"trainer.padding_free": True, "trainer.max_length": None}),
    ("sft", "stage + packing (bfd)", "stage", {"trainer.packing": True}),
    ("sft", "stage + group_by_length", "stage", {"trainer.train_sampling_strategy": "group_by_length"}),
    ("rm", "TRL defaults", "trl", {}),
    ("rm", "TRL defaults, bf16=False", "trl", {"bf16": False}),
    ("rm", "stage (recipe)", "stage", {}),
]
KINDS = {"sft": "sft", "rm": "reward_model"}
SHOWN = ("per_device_train_batch_size", "max_length", "bf16", "activation_checkpointing", "padding_free", "packing",
         "learning_rate", "train_sampling_strategy")
FILLER = ("Here is what I would suggest.", "First, think about what the question is really asking.",
          "The short answer is that it depends on the details.", "A simple example makes this clearer.",
          "Be careful with edge cases such as empty input.", "In summary, the safest option is the first one.")


def answer(rng: random.Random) -> str:
    """A deterministic filler answer of 8-128 words, log-uniform so short and long ones both occur."""
    words = int(math.exp(rng.uniform(math.log(8), math.log(128))))
    return " ".join(" ".join(rng.choice(FILLER) for _ in range(words)).split()[:words])


def prompt_chats(n: int, seed: int) -> list:
    """n user turns from the shipped helpful and red-team prompts (seeded order, repeated if n is larger)."""
    from cai import sources

    prompts = sources.load_prompts("cai://helpful")[0] + sources.load_prompts("cai://redteam")[0]
    random.Random(seed).shuffle(prompts)
    return [[{"role": "user", "content": prompts[i % len(prompts)]["prompt"]}] for i in range(n)]


def sft_rows(args, node, spec, seed: int) -> list:
    """The SFT examples in the stage's format (prompt/completion by default), system prompt as the stage adds it."""
    from cai.training import examples

    if args.sft_data:
        chats = [json.loads(line).get("messages") for line in Path(args.sft_data).read_text().splitlines() if line]
    else:
        rng = random.Random(seed)
        chats = [chat + [{"role": "assistant", "content": answer(rng)}] for chat in prompt_chats(args.examples, seed)]
    found = [examples.sft_example(chat, node.format, spec.system_prompt) for chat in chats]
    return [e for e in found if e][:args.examples]


def pref_dataset(args, node, spec, seed: int):
    """Preference pairs as the reward_model stage feeds them (prompt, chosen, rejected, p_chosen)."""
    from cai.stages.reward_model import as_dataset
    from cai.training import examples

    if args.pref_data:
        rows = [json.loads(line) for line in Path(args.pref_data).read_text().splitlines() if line]
        pairs = [p for p in map(examples.preference_pair, rows) if p][:args.examples]
    else:
        rng = random.Random(seed + 1)
        pairs = [{"prompt": chat, "chosen": [{"role": "assistant", "content": answer(rng)}],
                  "rejected": [{"role": "assistant", "content": answer(rng)}],
                  "p_chosen": round(rng.uniform(0.55, 0.95), 3)} for chat in prompt_chats(args.examples, seed)]
    return as_dataset(pairs, node.soft_labels, spec.system_prompt)


class Counted:
    """Wraps Trainer.training_step, counting the real and padded tokens of each batch trained on (a collator wrapper
    would also count the batch accelerate's dataloader prefetches after the last step)."""

    def __init__(self, step):
        self.step, self.real, self.padded, self.batches = step, 0, 0, 0

    def __call__(self, model, inputs, *rest, **kwargs):
        ids, mask = inputs["input_ids"], inputs.get("attention_mask")
        self.batches += 1
        self.padded += ids.numel()
        self.real += int(mask.sum()) if mask is not None else ids.numel()  # padding-free: one unpadded row
        return self.step(model, inputs, *rest, **kwargs)


def compose(args, stage: str, overrides: dict) -> tuple:
    """The recipe's run config, its `stage` node (the first of that kind) with `overrides` and max_steps set, and
    the cai home (--home, else $CAI_HOME, else ./cai_home)."""
    from omegaconf import OmegaConf, open_dict

    from cai.config import compose_run

    cfg = compose_run([f"recipe={args.recipe}"])
    node = next(node for node in cfg.pipeline.values() if node.kind == KINDS[stage])
    with open_dict(node):  # on the CPU like TRL's rows (use_cpu=True), even where a GPU is present
        for key, value in {**overrides, "trainer.max_steps": args.steps, "trainer.use_cpu": True}.items():
            OmegaConf.update(node, key, value, force_add=True)
    return cfg, node, Path(args.home or os.environ.get("CAI_HOME", "cai_home")).resolve()


def token_ids(tokenizer, rows: list) -> list:
    """Each prompt/completion example's whole conversation as the chat template tokenizes it."""
    return [tokenizer.apply_chat_template(r["prompt"] + r["completion"], tokenize=True, return_dict=False)
            for r in rows]


def sft_trainer(source: str, overrides: dict, cfg, node, home: Path, args, out: Path):
    """TRL's SFTTrainer at its defaults, or as cai.stages.sft.train builds it (same model, same examples)."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from cai.models import checkpoint, load_tokenizer
    from cai.stage_api import StageContext
    from cai.training import common, lora

    spec = cfg.models.base
    rows = sft_rows(args, node, spec, cfg.seed)
    if source == "trl":
        config = SFTConfig(output_dir=str(out), max_steps=args.steps, use_cpu=True, report_to=[], seed=cfg.seed,
                           **overrides)
        return SFTTrainer(model=checkpoint(spec, home), args=config, train_dataset=Dataset.from_list(rows))
    tokenizer = load_tokenizer(spec, home, padding_side="right")
    if node.trainer.get("packing"):  # as many packed rows per step as hold one padded batch's real tokens
        mean, trainer = sum(map(len, token_ids(tokenizer, rows))) / len(rows), node.trainer
        trainer.per_device_train_batch_size = max(1, round(trainer.per_device_train_batch_size * mean
                                                            / trainer.max_length))
    config = common.trainer_config(SFTConfig, StageContext("sft", node, {}, out, home, cfg.seed))
    return SFTTrainer(model=lora.load_model(spec, home, common.train_dtype(node, spec)), args=config,
                      train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                      peft_config=lora.peft_config(node.lora))


def rm_trainer(source: str, overrides: dict, cfg, node, home: Path, args, out: Path):
    """TRL's RewardTrainer at its defaults, or the stage's soft-label trainer with the stage's settings."""
    from trl import RewardConfig, RewardTrainer

    from cai.models import checkpoint, load_tokenizer
    from cai.stage_api import StageContext
    from cai.training import common, lora
    from cai.training.reward_trainer import SoftRewardTrainer, load_reward_model

    spec = cfg.models.base
    dataset = pref_dataset(args, node, spec, cfg.seed)
    if source == "trl":
        config = RewardConfig(output_dir=str(out), max_steps=args.steps, use_cpu=True, report_to=[], seed=cfg.seed,
                              **overrides)
        return RewardTrainer(model=checkpoint(spec, home), args=config, train_dataset=dataset)
    config = common.trainer_config(RewardConfig, StageContext("reward_model", node, {}, out, home, cfg.seed))
    return SoftRewardTrainer(model=load_reward_model(spec, home, common.train_dtype(node, spec)), args=config,
                             train_dataset=dataset, processing_class=load_tokenizer(spec, home, padding_side="right"),
                             peft_config=lora.peft_config(node.lora, task_type="SEQ_CLS"),
                             calibration_bins=node.calibration_bins)


def child(args) -> None:
    """Train one configuration and print its measurements as one RESULT json line."""
    import torch
    import transformers

    if args.threads:
        torch.set_num_threads(args.threads)
    stage, name, source, overrides = CONFIGS[int(args.child)]
    cfg, node, home = compose(args, stage, overrides if source == "stage" else {})
    transformers.set_seed(cfg.seed)
    with tempfile.TemporaryDirectory() as out:
        trainer = (sft_trainer if stage == "sft" else rm_trainer)(source, overrides, cfg, node, home, args,
                                                                   Path(out))
        counter = Counted(trainer.training_step)
        trainer.training_step = counter  # the instance attribute shadows the method train() calls per batch
        started = time.perf_counter()
        result = trainer.train()
        wall = time.perf_counter() - started
    settings = {k: getattr(trainer.args, k, None) for k in SHOWN}
    settings["padding_free"] = getattr(trainer, "padding_free", None)  # SFTTrainer's: bfd packing turns it on
    settings["lora"] = bool(node.lora.enabled) if source == "stage" else False
    print("RESULT " + json.dumps({
        "stage": stage, "name": name, "steps": result.global_step, "batches": counter.batches, "wall": wall,
        "real": counter.real, "padded": counter.padded, "loss": result.training_loss,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "threads": torch.get_num_threads(),
        "settings": {k: str(v) for k, v in settings.items()}}), flush=True)


def check(args) -> None:
    """Forward-only: one batch's loss padded vs packed into one row as TRL's padding-free collator builds it."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from cai.models import checkpoint, load_tokenizer

    cfg, node, home = compose(args, "sft", {})
    spec, tokenizer = cfg.models.base, load_tokenizer(cfg.models.base, home, padding_side="right")
    feats = [{"input_ids": ids} for ids in token_ids(tokenizer, sft_rows(args, node, spec, cfg.seed)[:8])]
    padded = DataCollatorForLanguageModeling(tokenizer.pad_token_id)(feats)
    flat = DataCollatorForLanguageModeling(tokenizer.pad_token_id, padding_free=True)(feats)
    # the same row with one running position range: no boundaries, so sequences attend to earlier ones
    crossed = {"input_ids": flat["input_ids"], "labels": flat["labels"]}
    out = {}
    for attn in ("sdpa", "eager"):
        model = AutoModelForCausalLM.from_pretrained(checkpoint(spec, home), dtype=torch.float32,
                                                     attn_implementation=attn).eval()
        with torch.inference_mode():
            # use_cache=False as TRL's compute_loss passes it: with a cache, transformers skips the packed-sequence
            # (block-diagonal) mask it derives from position_ids, and sequences would see each other
            out[attn] = [model(**batch, use_cache=False).loss.item() for batch in (padded, flat, crossed)]
    print("RESULT " + json.dumps(out), flush=True)


def spawn(index, argv: list) -> dict | None:
    """Run `--child index` in a fresh interpreter (same affinity and environment); its RESULT, or None."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, *argv, "--child", str(index)], capture_output=True, text=True)
    found = [line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not found:
        print(f"child {index} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}", file=sys.stderr)
        return None
    print(f"[{index}] done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return json.loads(found[-1])


def table(results: list) -> None:
    """One row per configuration; ratios against the first row of its stage (TRL's defaults unless skipped)."""
    head = ("stage", "config", "steps", "wall s", "real tok/s", "padded tok/s", "pad %", "peak RSS MB", "train loss",
            "speed x", "RSS x")
    lines, base = [], {}
    for r in results:
        real, padded = r["real"] / r["wall"], r["padded"] / r["wall"]
        ref = base.setdefault(r["stage"], (real, r["rss_mb"]))
        lines.append((r["stage"], r["name"], str(r["steps"]), f"{r['wall']:.1f}", f"{real:.0f}", f"{padded:.0f}",
                      f"{100 * (1 - r['real'] / r['padded']):.0f}", f"{r['rss_mb']:.0f}", f"{r['loss']:.4f}",
                      f"{real / ref[0]:.2f}", f"{r['rss_mb'] / ref[1]:.2f}"))
    widths = [max(len(row[i]) for row in [head, *lines]) for i in range(len(head))]
    for row in [head, *lines]:
        print("  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))))
    print("\nsettings (as each trainer resolved them):")
    for r in results:
        print(f"  {r['stage']:<3} {r['name']:<24} " + ", ".join(f"{k}={v}" for k, v in r["settings"].items())
              + ("" if r["batches"] == r["steps"] else f" ({r['batches']} batches collated)"))


def main() -> None:
    """Run every configuration (and the padding-free check) in its own process, then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="smol", help="where the stage settings and the model come from")
    parser.add_argument("--home", default=None, help="cai home holding the converted model (default $CAI_HOME)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="torch threads per child (0: torch's default)")
    parser.add_argument("--sft-data", default=None, help="JSONL with `messages` rows (e.g. an sl_data artifact)")
    parser.add_argument("--pref-data", default=None, help="JSONL preference rows (e.g. a prefs artifact)")
    parser.add_argument("--only", default=None, help="comma-separated config indices (default: all)")
    parser.add_argument("--skip-emulated-bf16", action="store_true", help="skip TRL's bf16 rows where emulated")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        return check(args) if args.child == "check" else child(args)
    from cai.models import cpu_has_bf16

    wanted = [int(i) for i in args.only.split(",")] if args.only else range(len(CONFIGS))
    if args.skip_emulated_bf16 and not cpu_has_bf16():  # TRL rows run on the CPU (use_cpu=True)
        wanted = [i for i in wanted if not (CONFIGS[i][2] == "trl" and "bf16" not in CONFIGS[i][3])]
    results = [r for r in (spawn(i, sys.argv[1:]) for i in wanted) if r]
    print(f"model {args.recipe} models.base, {args.examples} examples, {args.steps} steps, "
          f"torch threads {results[0]['threads'] if results else '?'}, affinity {sorted(os.sched_getaffinity(0))}\n")
    table(results)
    print("group_by_length sorts within mega-batches of min(examples // (4 * batch), 50) batches: below 64 examples at "
          "batch 8 that is one batch, so it reorders without removing padding")
    losses = spawn("check", sys.argv[1:]) or {}
    print("\nforward check, 8 examples, loss: padded / padding-free (TRL's collator: position_ids restart per "
          "sequence) / the same row without restarts (sequences see each other, as in `wrapped` packing):")
    for attn, (pad, free, crossed) in losses.items():
        verdict = "exact" if abs(pad - free) < 1e-4 else "WRONG: sequences attend across boundaries"
        print(f"  {attn:<5} {pad:.6f} / {free:.6f} / {crossed:.6f}: padding-free {verdict}")


if __name__ == "__main__":
    main()
