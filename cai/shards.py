"""Sharded chunk work: a stage's examples split into `shards` (example i goes to shard i % K), each run by an
executor (cai.executors) as its own unit with its own resumable file and store lock, then merged in example order.

Every row is seeded per example (cai.keys.example_seed), so the merge has the bytes of the unsharded run on the same
engine and dtype, whatever K, executor or order the shards finished in; K and the executor are not in the key.
    <workdir>/shards/<i>of<K>/<name>   shard i's rows (appended per chunk), worker.json (host, pid)
    <workdir>/<name>                   the merge, written when every shard is done; then the shard files go
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

from cai import executors
from cai.chunks import append_jsonl, read_jsonl, resumable_chunks, write_jsonl
from cai.errors import CaiError
from cai.executors.base import ShardJob
from cai.stage_api import StageContext, log


def shard_count(ctx: StageContext) -> int:
    """The node's `shards` (1 when its stage has none)."""
    return int(ctx.cfg.get("shards") or 1)


def executor_name(node_cfg: Any, run_executors: Any) -> str:
    """The node's `executor`, else the run-wide `executors.default`."""
    return node_cfg.get("executor") or (run_executors.default if run_executors is not None else "local")


def sharded_chunks(ctx: StageContext, items: List[dict], slot: str, process: Callable, what: str = "prompts",
                   name: str = "data.jsonl") -> Tuple[List[dict], Dict[str, Any]]:
    """Run `process(chunk, ctx, engine) -> rows` over `items` into workdir/`name`: in this process with the slot's
    engine when the node has one shard, else in `shards` shards on the node's executor, merged in `items` order.
    `process` must pickle (a module-level function, or a functools.partial of one). Returns (rows, metrics)."""
    if shard_count(ctx) <= 1:
        absorb(ctx.workdir, name)  # rows an earlier sharded attempt left
        with ctx.engine(slot) as engine:
            rows, metrics = resumable_chunks(ctx, items, engine, lambda chunk: process(chunk, ctx, engine), what, name)
        return rows, {**metrics, "prompt_tokens": engine.stats.prompt_tokens}
    return run_shards(ctx, items, slot, process, what, name)


def split(items: List[dict], shards: int) -> List[List[dict]]:
    """Shard i: the items at positions i, i + K, i + 2K, ... (interleaved, so sorted inputs spread evenly)."""
    return [items[i::shards] for i in range(shards)]


def run_shards(ctx: StageContext, items: List[dict], slot: str, process: Callable, what: str,
               name: str) -> Tuple[List[dict], Dict[str, Any]]:
    """Dispatch the unfinished shards (retrying dead ones as the executor's settings say), then merge."""
    from cai.launch import context_record

    shards, where = shard_count(ctx), f"pipeline.{ctx.node}"
    name_of = executor_name(ctx.cfg, ctx.dispatch.get("executors"))
    executors.check_executor(name_of, f"{where}.executor")
    absorb(ctx.workdir, name, keep=shards)
    merged = ids_in(ctx.workdir / name)  # rows of an earlier unsharded attempt or another split: not redone
    record, key = context_record(ctx), ctx.dispatch.get("key", ctx.workdir.name)
    factory = ctx.engine_factory if name_of == "inprocess" else None
    jobs = [ShardJob(record, slot, process, [it for it in part if it["id"] not in merged], i, shards, name, what,
                     key, factory) for i, part in enumerate(split(items, shards))]
    todo = [job for job in jobs if not {it["id"] for it in job.items} <= ids_in(job.folder / name)]
    log.info("%s: %d of %d shards to run on %s (%d of %d %s already done)", ctx.node, len(todo), shards, name_of,
             len(done_ids(ctx.workdir, name)), len(items), what)
    started = time.perf_counter()
    results = dispatch(todo, name_of, ctx.dispatch.get("executors"), where)
    rows = merge(ctx.workdir, name, items, shards, where)
    return rows, shard_metrics(ctx, slot, results, name_of, time.perf_counter() - started, shards)


def dispatch(jobs: List[ShardJob], name: str, run_executors: Any, where: str) -> List[dict]:
    """Run the jobs; a shard that died runs again (`retries` times); a failure left over is a CaiError naming it."""
    settings = executors.settings_of(name, run_executors)
    retries = int(getattr(settings, "retries", 0) or 0) if settings is not None else 0
    results: List[dict] = []
    for attempt in range(retries + 1):
        if not jobs:
            break
        outcomes = executors.run(name, run_executors, jobs, lambda r: log_result(where, r, len(jobs)), where)
        results += [o for o in outcomes.values() if "error" not in o]
        failed = [job for job in jobs if "error" in outcomes[job.shard]]
        user = [job for job in failed if outcomes[job.shard].get("user_error")]
        if user or not failed or attempt == retries:
            jobs = failed
            break
        log.warning("%s: %s failed; running again (attempt %d of %d)", where,
                    ", ".join(j.label for j in failed), attempt + 2, retries + 1)
        jobs = failed
    if jobs:
        detail = "\n".join(f"  {job.label}: {outcomes[job.shard]['error']}" for job in jobs)
        raise CaiError(f"{where}: {len(jobs)} of {jobs[0].shards} shards did not finish on executor {name}:\n"
                       f"{detail}\nthe finished shards are kept; run the same command again to resume only these")
    return results


def log_result(where: str, result: dict, total: int) -> None:
    """One line per finished shard: where it ran and how fast."""
    if "error" not in result:
        log.info("%s: shard %d done on %s (%d rows, %d computed, %.1f s)", where, result["shard"],
                 result.get("host"), result["rows"], result["computed"], result.get("wall_s", 0.0))


def shard_files(workdir: Path, name: str) -> List[Path]:
    """Every shard's file for output `name`, of any split."""
    return sorted((workdir / "shards").glob(f"*of*/{name}"))


def ids_in(path: Path) -> set:
    """The ids of the rows in a JSONL file (none when it does not exist)."""
    return {row["id"] for row in read_jsonl(path)}


def done_ids(workdir: Path, name: str) -> set:
    """Ids already written: in the merged file, or in any shard file."""
    found = ids_in(workdir / name)
    for path in shard_files(workdir, name):
        found |= ids_in(path)
    return found


def absorb(workdir: Path, name: str, keep: int = 0) -> None:
    """Move the rows of shard files from another split (or any, with keep=0) into workdir/`name`, so no finished row
    is lost or doubled when a rerun changes `shards`."""
    main = workdir / name
    have = ids_in(main)
    for path in shard_files(workdir, name):
        if keep and path.parent.name.endswith(f"of{keep}"):
            continue
        fresh = [row for row in read_jsonl(path) if row["id"] not in have]
        append_jsonl(main, fresh)
        have |= {row["id"] for row in fresh}
        remove_shard(path)


def merge(workdir: Path, name: str, items: List[dict], shards: int, where: str) -> List[dict]:
    """workdir/`name` in `items` order from every shard's rows (the bytes an unsharded run writes); then the shard
    files are removed."""
    by_id: Dict[str, dict] = {}
    for path in [workdir / name, *shard_files(workdir, name)]:
        for row in read_jsonl(path):
            by_id.setdefault(row["id"], row)
    lost = [item["id"] for item in items if item["id"] not in by_id]
    if lost:
        raise CaiError(f"{where}: {len(lost)} rows missing after every shard finished (first: {lost[0]!r})")
    ordered = [by_id[item["id"]] for item in items]
    write_jsonl(workdir / name, ordered)
    for path in shard_files(workdir, name):
        remove_shard(path)
    return ordered


def remove_shard(path: Path) -> None:
    """Drop a merged shard file, and its folder once nothing else is in it."""
    path.unlink(missing_ok=True)
    folder = path.parent
    if not any(p for p in folder.iterdir() if p.name != "worker.json"):
        shutil.rmtree(folder, ignore_errors=True)
    if folder.parent.is_dir() and not any(folder.parent.iterdir()):
        folder.parent.rmdir()


def shard_metrics(ctx: StageContext, slot: str, results: List[dict], executor: str, seconds: float,
                  shards: int) -> Dict[str, Any]:
    """The node's throughput over all shards, end to end (rows and tokens of this run / its wall time, starting the
    workers included), the shards' engine loops summed (`shard_tokens_per_s`, what an unsharded run's
    `generated_tokens_per_s` measures), and one entry per shard."""
    if results:
        ctx.engines_used[slot] = results[0].get("engine", {})
    computed = sum(r["computed"] for r in results)
    tokens = sum(r.get("generated_tokens", 0) for r in results)
    per_shard = [{k: r.get(k) for k in ("shard", "host", "pid", "rows", "computed", "wall_s", "generated_tokens")}
                 for r in sorted(results, key=lambda r: r["shard"])]
    engine_rate = sum(r.get("generated_tokens", 0) / max(r.get("wall_s", 0.0), 1e-9) for r in results)
    return {"generated_tokens": tokens, "generated_tokens_per_s": tokens / max(seconds, 1e-9),
            "shard_tokens_per_s": engine_rate,
            "prompts_per_s": computed / max(seconds, 1e-9), "wall_s": seconds,
            "prompt_tokens": sum(r.get("prompt_tokens", 0) for r in results), "shards": shards,
            "executor": executor, "shard_runs": per_shard}
