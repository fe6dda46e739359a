"""The worker side of sharding: rebuild the stage context, open the slot's engine once, and run shard after shard
into workdir/shards/<i>of<K>/, each under its own store lock, resuming what an earlier attempt wrote.

`python -m cai.executors.worker JOBS RESULTS` is the local executor's worker process; Ray actors and submitit jobs
run the same ShardWorker in their own processes."""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from cai.chunks import read_jsonl, resumable_chunks
from cai.errors import CaiError
from cai.executors.base import ShardJob, error_text, failure, job_from
from cai.stage_api import log
from cai.store import Store, write_json


class ShardWorker:
    """Runs shard jobs one after another, keeping one engine per model slot open across them."""

    def __init__(self) -> None:
        self.engines: Dict[str, Any] = {}
        self.described: Dict[str, Dict[str, Any]] = {}

    def run(self, job: ShardJob) -> Dict[str, Any]:
        """Run one shard (resuming its file) and return its outcome: rows, host, engine and throughput."""
        from cai.launch import context_from

        ctx = context_from(job.record)
        ctx.engine_factory, ctx.workdir = job.engine_factory, job.folder
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        write_json(ctx.workdir / "worker.json", {"host": socket.gethostname(), "pid": os.getpid(),
                                                 "started": time.time(), "items": len(job.items)})
        try:
            with Store(ctx.home).lock(job.lock, wait_message=lambda: log.info(
                    "%s %s: another worker holds it; waiting", ctx.node, job.label)):
                before = {row["id"] for row in read_jsonl(ctx.workdir / job.name)}
                engine = self.engine(ctx, job.slot)
                tokens = engine.stats.prompt_tokens
                rows, metrics = resumable_chunks(ctx, job.items, engine, lambda chunk: job.process(chunk, ctx, engine),
                                                 job.what, job.name)
        except CaiError as err:  # a user error: named as it is, and not retried
            return {**failure(job, str(err)), "user_error": True}
        computed = sum(1 for item in job.items if item["id"] not in before)
        return {"shard": job.shard, "rows": len(rows), "computed": computed, "host": socket.gethostname(),
                "pid": os.getpid(), "engine": self.described[job.slot], "prompt_tokens": engine.stats.prompt_tokens
                - tokens, **metrics}

    def engine(self, ctx, slot: str) -> Any:
        """The slot's engine, opened on first use (one per worker, reused by every shard it runs)."""
        if slot not in self.engines:
            self.engines[slot] = ctx.engine(slot)
            self.described[slot] = ctx.engines_used.get(slot, {})
            ctx._open.clear()  # the worker owns it now, not this shard's context
        return self.engines[slot]

    def close(self) -> None:
        """Close every engine the worker opened."""
        while self.engines:
            _, engine = self.engines.popitem()
            if hasattr(engine, "close"):
                engine.close()


def run_jobs(jobs: List[ShardJob], on_result: Optional[Callable[[Dict[str, Any]], None]] = None) -> List[dict]:
    """Run `jobs` with one ShardWorker; a shard that raises is reported as failed and the next one still runs."""
    worker, results = ShardWorker(), []
    try:
        for job in jobs:
            try:
                result = worker.run(job)
            except Exception as err:  # noqa: BLE001 - reported to the parent, which names the shard
                result = failure(job, error_text(err))
            results.append(result)
            if on_result:
                on_result(result)
    finally:
        worker.close()
    return results


def main(argv: List[str]) -> None:
    """The local executor's worker process: jobs from a JSON file, one JSON line per finished shard."""
    import logging

    from cai.launch import exit_with_parent

    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="[%(asctime)s][%(levelname)s] - %(message)s")
    if os.environ.get("CAI_PARENT_PID"):
        exit_with_parent(int(os.environ["CAI_PARENT_PID"]))
    jobs = [job_from(record) for record in json.loads(Path(argv[0]).read_text(encoding="utf-8"))]
    out = Path(argv[1])

    def record(result: Dict[str, Any]) -> None:
        with out.open("a", encoding="utf-8") as f:
            f.write(json.dumps(result, default=str) + "\n")

    run_jobs(jobs, record)


if __name__ == "__main__":
    main(sys.argv[1:])
