"""HHH multiple-choice accuracy and comparisons/s: the feedback scorer against a straightforward computation.

The straightforward computation shares no code with the scorer: for each row and each option alone, one full
forward pass over prompt + option (tokenized together), the option tokens' log-probs summed, softmax over the
row's options. Same model (the hhh_eval recipe's judge), same dtype, measured in one run:
    python bench/feedback_hhh.py [--limit N] [--evals PATH] [--skip-straightforward]
    python bench/feedback_hhh.py --stage-results $CAI_HOME/runs/hhh_eval/<time>/artifacts/hhh  # compare to a run
    python bench/feedback_hhh.py --quantize int8 --skip-straightforward  # the int8 judge against the fp32 one
"""
from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path
from typing import List, Tuple

DEFAULT = "../shared/evals/ConstitutionalHarmlessnessPaper/438HHHEvaluations.jsonl"


def straightforward(model, tokenizer, rows, log_every: int = 0) -> Tuple[List[List[float]], float]:
    """Option probabilities per row from one unbatched, uncached forward pass per (row, option)."""
    import torch

    started, out = time.perf_counter(), []
    for number, row in enumerate(rows, 1):
        if log_every and number % log_every == 0:
            print(f"  straightforward: {number}/{len(rows)} rows, {time.perf_counter() - started:.0f} s", flush=True)
        context = tokenizer(row["prompt"], add_special_tokens=False).input_ids
        logprobs = []
        for option in row["corrects"] + row["incorrects"]:
            ids = tokenizer(row["prompt"] + option, add_special_tokens=False).input_ids
            assert ids[:len(context)] == context, "the option changed the prompt's tokenization"
            with torch.inference_mode():
                logp = model(input_ids=torch.tensor([ids], device=model.device)).logits[0].float().log_softmax(-1)
            logprobs.append(sum(float(logp[i - 1, ids[i]]) for i in range(len(context), len(ids))))
        top = max(logprobs)
        weights = [math.exp(lp - top) for lp in logprobs]
        out.append([w / sum(weights) for w in weights])
    return out, time.perf_counter() - started


def scorer(engine, rows) -> Tuple[List[List[float]], float]:
    """Option probabilities per row through the stage's own path (engine.choice_logprobs, all rows in one call)."""
    from cai.feedback.labels import softmax

    started = time.perf_counter()
    logprobs = engine.choice_logprobs([r["prompt"] for r in rows], [r["corrects"] + r["incorrects"] for r in rows])
    return [softmax(lp) for lp in logprobs], time.perf_counter() - started


def stage_results(folder: str, rows) -> Tuple[List[List[float]], float]:
    """Option probabilities per row as a feedback_accuracy run stored them (data.jsonl), and its scoring time."""
    import json

    by_row = {r["row"]: r for r in map(json.loads, (Path(folder) / "data.jsonl").read_text().splitlines())}
    metrics = json.loads((Path(folder) / "metrics.json").read_text())
    return [by_row[r["row"]]["probs"] for r in rows], metrics["wall_s"] * len(rows) / metrics["rows"]


def accuracy(probs: List[List[float]], rows) -> float:
    """Fraction of rows whose most probable option is a correct one."""
    right = [max(range(len(p)), key=p.__getitem__) < len(r["corrects"]) for p, r in zip(probs, rows)]
    return sum(right) / len(right)


def agreement(ours: List[List[float]], other: List[List[float]]) -> str:
    """How often two sets of option probabilities pick the same option, and their largest difference."""
    same = sum(max(range(len(a)), key=a.__getitem__) == max(range(len(b)), key=b.__getitem__)
               for a, b in zip(ours, other))
    gap = max(abs(x - y) for a, b in zip(ours, other) for x, y in zip(a, b))
    return f"same predicted option on {same}/{len(ours)} rows; max |p difference| {gap:.2e}"


def main() -> None:
    """Print both accuracies, their speeds and how often the two agree."""
    from cai.config import compose_run
    from cai.engines.hf import HFEngine
    from cai.stages.feedback_accuracy import load_rows

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--evals", default=DEFAULT)
    parser.add_argument("--skip-straightforward", action="store_true")
    parser.add_argument("--stage-results", help="a feedback_accuracy artifact folder: compare to it, not a new run")
    parser.add_argument("--quantize", default="none", help="int8: also score with the int8 judge, against fp32")
    args = parser.parse_args()
    rows = load_rows(f"file://{args.evals}")[:args.limit]
    cfg = compose_run(["recipe=hhh_eval"])
    home = Path(os.environ.get("CAI_HOME", "cai_home")).resolve()
    engine = HFEngine(cfg.models.judge, home)
    print(f"{len(rows)} rows, model dtype {engine.model.dtype}, device {engine.model.device}")
    ours, seconds = stage_results(args.stage_results, rows) if args.stage_results else scorer(engine, rows)
    print(f"scorer:          accuracy {100 * accuracy(ours, rows):.2f}%  {len(rows) / seconds:.2f} comparisons/s"
          f"  ({seconds:.1f} s)")
    if args.quantize != "none":
        quantized = HFEngine(compose_run(["recipe=hhh_eval", f"models.judge.quantize={args.quantize}"]).models.judge,
                             home)
        fast, fast_seconds = scorer(quantized, rows)
        print(f"scorer, {args.quantize}:   accuracy {100 * accuracy(fast, rows):.2f}%  {len(rows) / fast_seconds:.2f} "
              f"comparisons/s  ({fast_seconds:.1f} s); x{seconds / fast_seconds:.2f}; {agreement(fast, ours)}")
    if args.skip_straightforward:
        return
    plain, plain_seconds = straightforward(engine.model, engine.tokenizer, rows, log_every=25)
    print(f"straightforward: accuracy {100 * accuracy(plain, rows):.2f}%  {len(rows) / plain_seconds:.2f} "
          f"comparisons/s  ({plain_seconds:.1f} s)")
    print(f"{agreement(ours, plain)}; speed-up x{plain_seconds / seconds:.1f}")


if __name__ == "__main__":
    main()
