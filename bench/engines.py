"""Engines on the same work, one run: the SL-CAI workload through the critique_revision stage with engine hf and
engine vllm, and raw vLLM on the same chats (the framework's overhead); HHH scoring with hf and vllm, with label
agreement. Each measurement runs in its own process (memory, and vLLM's worker processes), on the embedded SmolLM2.

    python bench/engines.py [--prompts 64] [--max-new 96] [--dtype auto] [--skip-hhh] [--skip-sl] [--only hf,vllm,raw]

The SL-CAI workload: answer, critique, revision (3 turns) for the first N shipped red-team prompts, T 0.8, top-p
0.95, with and without the 2-exemplar few-shot prefix; stage wall time includes the engine's start-up, tokens/s
counts generated tokens over the whole stage. Needs vLLM installed (`pip install -e '.[vllm]'`) for vllm and raw.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HHH = "evals/ConstitutionalHarmlessnessPaper/438HHHEvaluations.jsonl"


def cpu_model() -> str:
    """The CPU's model name and whether it has AVX-512 BF16 (the figures depend on both)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
                platform.processor())
    return f"{name}, {os.cpu_count()} cores, AVX-512 BF16: {'yes' if 'avx512_bf16' in info else 'no'}"


def overrides(args, fewshot: bool, engine: str) -> list:
    """The smol recipe's sl_data node sized for the workload, on `engine`."""
    out = ["recipe=smol", "targets=[sl_data]", f"pipeline.sl_data.limit={args.prompts}", "pipeline.sl_data.revisions=1",
           f"pipeline.sl_data.fewshot={str(fewshot).lower()}", "pipeline.sl_data.max_exemplars=2",
           f"pipeline.sl_data.chunk_size={args.prompts}", "pipeline.sl_data.sampling.temperature=0.8",
           "pipeline.sl_data.sampling.top_p=0.95", f"pipeline.sl_data.sampling.max_new_tokens={args.max_new}",
           f"models.generator.engine={engine}", f"models.generator.dtype={args.dtype}", "cache.mode=off"]
    return out + (["+models.generator.engine_options.max_model_len=4096"] if engine == "vllm" else [])


def stage(args, fewshot: bool, engine: str) -> dict:
    """The critique_revision stage end to end (engine start-up included)."""
    from cai.config import compose_run
    from cai.runner import run

    cfg = compose_run([*overrides(args, fewshot, engine), f"home={args.home}"])
    started = time.perf_counter()
    result = run(cfg, Path(tempfile.mkdtemp()))[-1]
    wall = time.perf_counter() - started
    rows = [json.loads(line) for line in (result.path / "data.jsonl").read_text().splitlines()]
    return {"wall_s": wall, "tokens": result.metrics["generated_tokens"],
            "generate_s": result.metrics["wall_s"], "texts": [[r["initial"]] + [x["revision"] for x in r["rounds"]]
                                                              for r in rows]}


def raw_vllm(args, fewshot: bool) -> dict:
    """The same three turns straight through vllm.LLM: the same chats, token ids, principles and seeds."""
    from vllm import LLM, SamplingParams

    from cai.config import compose_run
    from cai.constitution import fewshot_chat, sample_principles
    from cai.constitution.render import render_prompt
    from cai.engines.hf import stop_ids
    from cai.keys import example_seeds, stable_rng
    from cai.models import checkpoint, load_tokenizer, resolve_dtype
    from cai.sources import load_prompts
    from cai.stages.critique_revision import constitution_context

    cfg = compose_run([*overrides(args, fewshot, "vllm"), f"home={args.home}"])
    node, spec = cfg.pipeline.sl_data, cfg.models.generator
    started = time.perf_counter()
    tokenizer = load_tokenizer(spec, Path(args.home))
    path = checkpoint(spec, Path(args.home))
    llm = LLM(model=path, tokenizer=path, dtype=str(resolve_dtype(spec.dtype)).replace("torch.", ""),
              enable_prefix_caching=True, seed=0, enforce_eager=True, max_num_batched_tokens=16384, max_model_len=4096)
    prompts, _ = load_prompts(node.inputs.prompts, node.limit, False, cfg.seed)
    context = constitution_context(cfg, node)
    principles, ids = context["principles"], [p["id"] for p in prompts]
    chats = [(fewshot_chat(context["exemplars"]) if fewshot else []) + [{"role": "user", "content": p["prompt"]}]
             for p in prompts]
    stops, tokens = stop_ids(tokenizer), 0
    picked = [sample_principles(principles, list(principles), 1, stable_rng(cfg.seed, i, 0))[0] for i in ids]

    def turn(chats, name):
        nonlocal tokens
        params = [SamplingParams(max_tokens=args.max_new, temperature=0.8, top_p=0.95, repetition_penalty=1.1,
                                 seed=s, stop_token_ids=stops) for s in example_seeds(cfg.seed, ids, name)]
        encoded = [{"prompt_token_ids": tokenizer(render_prompt(c, tokenizer, spec.system_prompt),
                                                  add_special_tokens=False).input_ids} for c in chats]
        outs = llm.generate(encoded, params, use_tqdm=False)
        tokens += sum(len(o.outputs[0].token_ids) for o in outs)
        return [o.outputs[0].text.strip() for o in outs]

    answers = turn(chats, "initial")
    chats = [c + [{"role": "assistant", "content": a}, {"role": "user", "content": principles[p]["critique"]}]
             for c, a, p in zip(chats, answers, picked)]
    critiques = turn(chats, "c0")
    chats = [c + [{"role": "assistant", "content": x}, {"role": "user", "content": principles[p]["revision"]}]
             for c, x, p in zip(chats, critiques, picked)]
    turn(chats, "r0")
    return {"wall_s": time.perf_counter() - started, "tokens": tokens}


def hhh(args, engine: str) -> dict:
    """feedback_accuracy over the 438 HHH rows: comparisons/s and each row's predicted option."""
    from cai.config import compose_run
    from cai.runner import run

    shared = os.environ.get("CAI_SHARED") or str(ROOT.parent / "shared")  # the checkout's neighbour, as in tests
    cfg = compose_run(["recipe=hhh_eval", f"shared_dir={shared}", f"models.judge.engine={engine}", f"models.judge.dtype={args.dtype}",
                       "cache.mode=off", f"home={args.home}"]
                      + (["+models.judge.engine_options.max_model_len=4096"] if engine == "vllm" else []))
    started = time.perf_counter()
    result = run(cfg, Path(tempfile.mkdtemp()))[-1]
    rows = [json.loads(line) for line in (result.path / "data.jsonl").read_text().splitlines()]
    return {"wall_s": time.perf_counter() - started, "accuracy": result.metrics["accuracy"],
            "comparisons_per_s": result.metrics["comparisons_per_s"], "predicted": [r["predicted"] for r in rows],
            "probs": [r["probs"] for r in rows]}


def child(args) -> None:
    """One measurement, printed as JSON on the last line."""
    kind, *rest = args.child.split(":")
    if kind == "stage":
        out = stage(args, rest[1] == "1", rest[0])
    elif kind == "raw":
        out = raw_vllm(args, rest[0] == "1")
    else:
        out = hhh(args, rest[0])
    print("RESULT " + json.dumps(out), flush=True)


def measure(args, what: str) -> dict:
    """Run one measurement in a fresh interpreter."""
    cmd = [sys.executable, __file__, "--child", what, "--home", args.home, "--prompts", str(args.prompts),
           "--max-new", str(args.max_new), "--dtype", args.dtype]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith("RESULT ")), None)
    if proc.returncode or line is None:
        raise SystemExit(f"{what} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(line[len("RESULT "):])


def sl_table(args, only: set) -> None:
    """Tokens/s of each engine and raw vLLM, with and without the few-shot prefix, and their ratios."""
    for fewshot in (True, False):
        runs = {}
        for name, what in (("hf", "stage:hf"), ("vllm", "stage:vllm"), ("raw", "raw")):
            if name in only:
                runs[name] = measure(args, f"{what}:{int(fewshot)}" if name != "raw" else f"raw:{int(fewshot)}")
                print(f"  {'with' if fewshot else 'no'} prefix, {name}: {runs[name]['tokens']} tokens in "
                      f"{runs[name]['wall_s']:.1f} s = {runs[name]['tokens'] / runs[name]['wall_s']:.1f} tok/s",
                      flush=True)
        rate = {k: v["tokens"] / v["wall_s"] for k, v in runs.items()}
        if "raw" in rate:
            for name in ("hf", "vllm"):
                if name in rate:
                    print(f"SL-CAI {args.prompts} prompts, {'2-exemplar prefix' if fewshot else 'no prefix'}: "
                          f"{name} / raw vLLM = {rate[name] / rate['raw']:.2f}x", flush=True)
        if "hf" in runs and "vllm" in runs:
            same = sum(a == b for a, b in zip(runs["hf"]["texts"], runs["vllm"]["texts"]))
            print(f"  hf and vllm gave the same three turns for {same}/{len(runs['hf']['texts'])} prompts", flush=True)


def hhh_table(args) -> None:
    """Comparisons/s of hf and vllm on the 438 HHH rows, and how often they pick the same option."""
    hf, vl = measure(args, "hhh:hf"), measure(args, "hhh:vllm")
    same = sum(a == b for a, b in zip(hf["predicted"], vl["predicted"]))
    near = sum(1 for a, b, p in zip(hf["predicted"], vl["predicted"], hf["probs"])
               if a != b and sorted(p)[-1] - sorted(p)[-2] < 0.02)
    print(f"HHH ({len(hf['predicted'])} rows): hf {hf['comparisons_per_s']:.2f} vs vllm {vl['comparisons_per_s']:.2f} "
          f"comparisons/s (vllm/hf {vl['comparisons_per_s'] / hf['comparisons_per_s']:.2f}x); accuracy "
          f"{hf['accuracy']:.3f} vs {vl['accuracy']:.3f}; same option on {same}/{len(hf['predicted'])} rows "
          f"({near} of the others are near-ties, margin < 0.02)", flush=True)


def main() -> None:
    """Parse arguments and print the tables (or run one child measurement)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new", type=int, default=96)
    parser.add_argument("--dtype", default="auto", help="auto (bf16 where the CPU has it), float32, bfloat16")
    parser.add_argument("--home", default=os.environ.get("CAI_HOME", str(ROOT / "cai_home")))
    parser.add_argument("--only", default="hf,vllm,raw")
    parser.add_argument("--skip-hhh", action="store_true")
    parser.add_argument("--skip-sl", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    print(f"CPU: {cpu_model()}; dtype {args.dtype}", flush=True)
    if not args.skip_sl:
        sl_table(args, set(args.only.split(",")))
    if not args.skip_hhh:
        hhh_table(args)


if __name__ == "__main__":
    main()
