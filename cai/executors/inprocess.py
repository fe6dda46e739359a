"""executor=inprocess: the shards one after another in the cai process, with one engine (no worker process)."""
from __future__ import annotations

from typing import Any, Callable, Dict, List

from cai.executors.base import ShardJob
from cai.executors.worker import run_jobs


def run(jobs: List[ShardJob], settings: Any, on_result: Callable[[dict], None], where: str) -> Dict[int, dict]:
    """Run every job here; returns shard -> outcome."""
    return {r["shard"]: r for r in run_jobs(jobs, on_result)}


def resources(settings: Any, jobs: int) -> str:
    """What the plan prints for this executor."""
    return "the cai process, one shard after another"
