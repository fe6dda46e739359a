"""Resumable, append-only JSONL output for stages that work through examples chunk by chunk.

Each finished chunk is appended and fsynced, so a kill costs at most the chunks in flight; a rerun skips the ids
already written. Engines that serve several requests at once (servers) get several chunks in flight; the file is
rewritten in the examples' order at the end, so its bytes do not depend on which chunk finished first.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Iterable, List, Tuple

from cai.stage_api import StageContext, log
from cai.store import atomic_write


def read_jsonl(path: Path) -> List[dict]:
    """Rows of a JSONL file; a torn last line (from a kill mid-write) is dropped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("dropping a torn line in %s (interrupted write)", path)
    return rows


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    """Write rows to a temp file beside `path`, then rename it into place (never half a file)."""
    atomic_write(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def resume_jsonl(path: Path) -> List[dict]:
    """Rows already written by an interrupted run, rewriting the file without a torn last line."""
    rows = read_jsonl(path)
    if path.is_file() and len(rows) != len(path.read_text(encoding="utf-8").splitlines()):
        write_jsonl(path, rows)
    return rows


def append_jsonl(path: Path, rows: Iterable[dict]) -> None:
    """Append rows and flush to disk, so a kill loses at most the batch in flight."""
    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def in_flight(engine: Any) -> int:
    """How many chunks to keep in flight for this engine (its declared concurrency; 1 for in-process ones)."""
    return max(1, int(getattr(getattr(engine, "capabilities", None), "concurrency", 1) or 1))


def resumable_chunks(ctx: StageContext, items: List[dict], engine: Any, process: Callable[[List[dict]], List[dict]],
                     what: str = "prompts", name: str = "data.jsonl") -> Tuple[List[dict], dict]:
    """Run `process(chunk) -> rows` over `items` chunk by chunk into workdir/`name`, skipping ids already there
    (a killed run resumes); returns the rows in `items` order and the throughput metrics."""
    from cai.progress import StageProgress

    out = ctx.workdir / name
    done = {row["id"] for row in resume_jsonl(out)}
    todo = [item for item in items if item["id"] not in done]
    if done:
        log.info("%s: resuming, %d of %d %s already done", ctx.node, len(done), len(items), what)
    chunks = [todo[i:i + ctx.cfg.chunk_size] for i in range(0, len(todo), ctx.cfg.chunk_size)]
    with StageProgress(ctx.node, total=len(items), done=len(done), engine=engine) as progress:
        for chunk, rows in _run(chunks, process, in_flight(engine)):
            append_jsonl(out, rows)
            progress.advance(len(chunk))
    by_id = {row["id"]: row for row in read_jsonl(out)}
    ordered = [by_id[item["id"]] for item in items]
    write_jsonl(out, ordered)  # the examples' order, whatever order chunks finished (or resumed) in
    return ordered, progress.metrics()


def _run(chunks: List[List[dict]], process: Callable, workers: int):
    """(chunk, rows) as chunks finish: in order on this thread, or up to `workers` at once."""
    if workers == 1:
        for chunk in chunks:
            yield chunk, process(chunk)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending, queue = {}, iter(chunks)
        for chunk in queue:
            pending[pool.submit(process, chunk)] = chunk
            if len(pending) >= workers:
                break
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield pending.pop(future), future.result()
            for chunk in queue:
                pending[pool.submit(process, chunk)] = chunk
                if len(pending) >= workers:
                    break
