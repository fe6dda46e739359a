"""Generated tokens/s of the critique_revision stage against batched and one-prompt-at-a-time `model.generate`.

Same model, prompts, principles, exemplars and sampling settings, measured in one run:
    python bench/generation.py [--prompts 16] [--fewshot] [--max-new 64] [--recipe smol] [--batch 64]
        [--skip-naive] [--compare-turn-reuse] [--compare-shared-prefix] [--compare-generate-batch] [--quantize int8]
Batched `generate` counts its tokens up to the first stop token of each row (padding after it is not counted).
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from omegaconf import OmegaConf


def sl_inputs(cfg, fewshot: bool) -> tuple:
    """(prompts, constitution context, few-shot prefix chat) of the recipe's sl_data node."""
    from cai import sources
    from cai.constitution import fewshot_chat
    from cai.stages.critique_revision import constitution_context

    node = cfg.pipeline.sl_data
    prompts, _ = sources.load_prompts(node.inputs.prompts, node.limit, False, cfg.seed)
    context = constitution_context(cfg, node)
    return prompts, context, fewshot_chat(context["exemplars"]) if fewshot else []


def stage_run(cfg, home: Path, fewshot: bool, reuse_turns: bool = True, share_prefix: bool = True) -> tuple:
    """The stage's own path: run_chunk over all prompts with the hf engine (batched, prefix cache; unless switched
    off, each turn continuing the previous turn's keys/values and the shared prefix held once per batch)."""
    from cai.engines.hf import HFEngine
    from cai.stage_api import StageContext
    from cai.stages.critique_revision import run_chunk

    node = cfg.pipeline.sl_data
    prompts, context, prefix = sl_inputs(cfg, fewshot)
    engine = HFEngine(cfg.models.generator, home)
    engine.reuse_turns = engine.reuse_turns and reuse_turns
    engine.share_prefix = engine.share_prefix and share_prefix
    ctx = StageContext("sl_data", node, {}, Path(tempfile.mkdtemp()), home, cfg.seed, context)
    started = time.perf_counter()
    for start in range(0, len(prompts), node.chunk_size):
        run_chunk(prompts[start:start + node.chunk_size], prefix, ctx, engine)
    return engine.stats.generated_tokens, time.perf_counter() - started, engine, prompts, prefix, context


def naive_run(engine, prompts, prefix, context, sampling, seed) -> tuple:
    """The straightforward way: one chat at a time through `model.generate`, same three turns per prompt."""
    import torch

    from cai.constitution import sample_principles
    from cai.keys import stable_rng

    model, tok, principles = engine.model, engine.tokenizer, context["principles"]
    tokens, started = 0, time.perf_counter()
    for p in prompts:
        chat = prefix + [{"role": "user", "content": p["prompt"]}]
        pid = sample_principles(principles, list(principles), 1, stable_rng(seed, p["id"], 0))[0]
        for follow_up in (principles[pid]["critique"], principles[pid]["revision"], None):
            ids = tok(engine.render(chat), return_tensors="pt", add_special_tokens=False)
            with torch.inference_mode():
                out = model.generate(**ids, max_new_tokens=sampling.max_new_tokens, do_sample=sampling.do_sample,
                                     temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k,
                                     repetition_penalty=sampling.repetition_penalty, eos_token_id=engine.stop_ids,
                                     pad_token_id=tok.pad_token_id)
            new = out[0, ids.input_ids.shape[1]:]
            tokens += len(new)
            if follow_up is None:
                break
            chat = chat + [{"role": "assistant", "content": tok.decode(new, skip_special_tokens=True)},
                           {"role": "user", "content": follow_up}]
    return tokens, time.perf_counter() - started


def batched_run(engine, prompts, prefix, context, sampling, seed, batch: int) -> tuple:
    """Batched `model.generate` (left padding, `batch` chats per call), the same three turns per prompt: each turn
    is one round over all prompts, as the stage does it, but with no token budget, prefix cache or own sampler."""
    import torch

    from cai.constitution import sample_principles
    from cai.keys import stable_rng

    model, tok, principles = engine.model, engine.tokenizer, context["principles"]
    chats = [prefix + [{"role": "user", "content": p["prompt"]}] for p in prompts]
    picked = [sample_principles(principles, list(principles), 1, stable_rng(seed, p["id"], 0))[0] for p in prompts]
    tokens, started = 0, time.perf_counter()
    for turn in ("critique", "revision", None):
        replies = []
        for start in range(0, len(chats), batch):
            ids = tok([engine.render(c) for c in chats[start:start + batch]], return_tensors="pt", padding=True,
                      add_special_tokens=False)
            with torch.inference_mode():
                out = model.generate(**ids, max_new_tokens=sampling.max_new_tokens, do_sample=sampling.do_sample,
                                     temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k,
                                     repetition_penalty=sampling.repetition_penalty, eos_token_id=engine.stop_ids,
                                     pad_token_id=tok.pad_token_id)
            new = out[:, ids.input_ids.shape[1]:]
            tokens += int((~torch.isin(new, torch.tensor(engine.stop_ids + [tok.pad_token_id]))).sum())
            replies += tok.batch_decode(new, skip_special_tokens=True)
        if turn is None:
            break
        chats = [c + [{"role": "assistant", "content": r}, {"role": "user", "content": principles[pid][turn]}]
                 for c, r, pid in zip(chats, replies, picked)]
    return tokens, time.perf_counter() - started


def main() -> None:
    """Print tokens/s of both ways and their ratio."""
    from cai.config import compose_run

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="smol")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new", type=int, default=64)
    parser.add_argument("--fewshot", action="store_true")
    parser.add_argument("--batch", type=int, default=64, help="chats per batched `generate` call")
    parser.add_argument("--skip-naive", action="store_true", help="leave out the one-at-a-time loop (slow)")
    parser.add_argument("--compare-turn-reuse", action="store_true", help="also run the stage re-encoding each turn")
    parser.add_argument("--compare-shared-prefix", action="store_true",
                        help="also run the stage copying the shared prefix's keys/values into every row")
    parser.add_argument("--compare-generate-batch", action="store_true",
                        help="only the first turn, greedy: the engine vs transformers' continuous batching")
    parser.add_argument("--quantize", default="none", help="models.generator.quantize for every path (none|int8)")
    args = parser.parse_args()
    overrides = [f"recipe={args.recipe}", f"pipeline.sl_data.limit={args.prompts}",
                 f"pipeline.sl_data.sampling.max_new_tokens={args.max_new}", "pipeline.sl_data.revisions=1",
                 f"models.generator.quantize={args.quantize}"]
    cfg = compose_run(overrides)
    home = Path(os.environ.get("CAI_HOME", "cai_home")).resolve()
    if args.compare_generate_batch:
        return first_turn_against_generate_batch(cfg, home, args.fewshot, args.max_new)
    tokens, seconds, engine, prompts, prefix, context = stage_run(cfg, home, args.fewshot)
    sampling = cfg.pipeline.sl_data.sampling
    rows = [("critique_revision stage", tokens, seconds)]
    if args.compare_turn_reuse:
        rows.append(("stage, no turn reuse", *stage_run(cfg, home, args.fewshot, reuse_turns=False)[:2]))
    if args.compare_shared_prefix:
        rows.extend(shared_prefix_rows(overrides, home, args.fewshot))
    rows.append((f"batched generate ({args.batch})",
                 *batched_run(engine, prompts, prefix, context, sampling, cfg.seed, args.batch)))
    if not args.skip_naive:
        rows.append(("one-at-a-time generate", *naive_run(engine, prompts, prefix, context, sampling, cfg.seed)))
    print(f"model {args.recipe}: {OmegaConf.to_container(cfg.models.generator)}")
    print(f"prompts={len(prompts)} fewshot={args.fewshot} prefix_tokens={engine.stats.prefix_tokens_reused} "
          f"turn_tokens_reused={engine.stats.turn_tokens_reused} max_new_tokens={args.max_new} "
          f"dtype={engine.model.dtype} threads={torch_threads()}")
    for name, count, secs in rows:
        print(f"{name:44s}: {count:6d} tokens in {secs:7.1f} s = {count / secs:7.1f} tokens/s"
              f"  (stage x{(tokens / seconds) / (count / secs):.1f})")


def first_turn_against_generate_batch(cfg, home: Path, fewshot: bool, max_new: int) -> None:
    """Print tokens/s of the first SL-CAI turn, greedy, through the engine and through transformers'
    `generate_batch` (continuous batching, paged cache, default settings), and how many replies agree."""
    from transformers import GenerationConfig

    from cai.engines.hf import HFEngine

    node = cfg.pipeline.sl_data
    prompts, _, prefix = sl_inputs(cfg, fewshot)
    chats = [prefix + [{"role": "user", "content": p["prompt"]}] for p in prompts]
    engine = HFEngine(cfg.models.generator, home)
    greedy = OmegaConf.merge(node.sampling, {"do_sample": False, "repetition_penalty": 1.0, "max_new_tokens": max_new})
    started = time.perf_counter()
    ours = engine.generate(chats, greedy, [cfg.seed] * len(chats))
    ours_s, ours_tokens = time.perf_counter() - started, engine.stats.generated_tokens
    ids = [engine.tokenizer(engine.render(c), add_special_tokens=False).input_ids for c in chats]
    engine.model.set_attn_implementation("sdpa")  # generate_batch picks its paged variant itself
    config = GenerationConfig(max_new_tokens=max_new, do_sample=False, eos_token_id=engine.stop_ids,
                              pad_token_id=engine.tokenizer.pad_token_id)
    started = time.perf_counter()
    outputs = engine.model.generate_batch(inputs=ids, generation_config=config)
    theirs_s = time.perf_counter() - started
    ordered = [outputs[key] for key in sorted(outputs, key=lambda key: int(key.split("_")[-1]))]
    theirs = [engine.tokenizer.decode(o.generated_tokens, skip_special_tokens=True) for o in ordered]
    theirs_tokens = sum(len(o.generated_tokens) for o in ordered)
    print(f"first turn, {len(chats)} prompts, fewshot={fewshot}, prefix_tokens={engine.stats.prefix_tokens_reused}, "
          f"greedy, {max_new} new tokens, threads={torch_threads()}")
    print(f"engine          : {ours_tokens} tokens in {ours_s:.1f} s = {ours_tokens / ours_s:.1f} tokens/s")
    print(f"generate_batch  : {theirs_tokens} tokens in {theirs_s:.1f} s = {theirs_tokens / theirs_s:.1f} tokens/s")
    print(f"same replies: {sum(a.strip() == b.strip() for a, b in zip(ours, theirs))}/{len(chats)}")


def shared_prefix_rows(overrides, home: Path, fewshot: bool) -> list:
    """The stage with the shared prefix held once per batch and copied into every row, each in a fresh process so
    that each peak RSS is its own; rows of (name, tokens, seconds)."""
    import multiprocessing

    rows = []
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        for share, name in ((True, "stage, prefix held once"), (False, "stage, prefix per row")):
            tokens, seconds, rss = pool.apply(stage_in_child, (overrides, home, fewshot, share))
            rows.append((f"{name} (peak RSS {rss:.1f} GB)", tokens, seconds))
    return rows


def stage_in_child(overrides, home: Path, fewshot: bool, share_prefix: bool) -> tuple:
    """(tokens, seconds, peak RSS in GB) of one stage run in this (child) process."""
    import resource

    from cai.config import compose_run

    tokens, seconds = stage_run(compose_run(overrides), home, fewshot, share_prefix=share_prefix)[:2]
    return tokens, seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


if __name__ == "__main__":
    main()
