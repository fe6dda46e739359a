"""Sharded vs unsharded sl_data on this machine: the same bytes, and each run's wall time (the issue's GPU check).

    python bench/shards.py [--recipe smol] [--limit 32] [--shards 2] [--workers 2] [--executor local]
Each run is a fresh `python -m cai` in one CAI_HOME, after a one-prompt warm-up that builds or converts the model
there; the sharded run recomputes the same key (cache.mode=refresh). With one GPU, `--workers 2` puts both workers
on it."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(home: Path, args: list) -> dict:
    """One CLI run of sl_data; its (last) artifact's bytes and timings."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cai", "targets=[sl_data]", *args], cwd=ROOT, text=True,
                          capture_output=True, env={**os.environ, "CAI_HOME": str(home)})
    if proc.returncode != 0:
        sys.exit(f"cai {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    artifact = max((home / "store" / "critique_revision").glob("*/DONE.json"), key=lambda p: p.stat().st_mtime).parent
    metrics = json.loads((artifact / "metrics.json").read_text())
    return {"bytes": (artifact / "data.jsonl").read_bytes(), "cli_wall_s": round(time.perf_counter() - started, 1),
            "stage_wall_s": round(metrics["stage_wall_s"], 1), "generated_tokens": metrics.get("generated_tokens"),
            "tokens_per_s": round(metrics.get("generated_tokens_per_s", 0.0), 1),
            "engine_tokens_per_s": round(metrics.get("shard_tokens_per_s", metrics.get("generated_tokens_per_s", 0.0)), 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipe", default="smol")
    parser.add_argument("--limit", type=int, default=32)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--executor", default="local")
    args = parser.parse_args()
    common = [f"recipe={args.recipe}", f"pipeline.sl_data.limit={args.limit}"]
    sharded = [f"pipeline.sl_data.shards={args.shards}", f"pipeline.sl_data.executor={args.executor}",
               f"executors.local.workers={args.workers}", "executors.ray.local_cpus=2"]
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp), [f"recipe={args.recipe}", "pipeline.sl_data.limit=1"])  # the model, built once
        one = run(Path(tmp), common)
        many = run(Path(tmp), common + sharded + ["cache.mode=refresh"])
    same = one.pop("bytes") == many.pop("bytes")
    print(json.dumps({"recipe": args.recipe, "prompts": args.limit, "bytes_equal": same, "shards_1": one,
                      f"shards_{args.shards}_{args.executor}": many}, indent=2))
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
