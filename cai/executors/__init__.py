"""Where a sharded node's shards run: `inprocess`, `local` (worker processes on this machine), `ray` (Ray actors)
or `slurm` (submitit). Each executor runs picklable ShardJobs with cai.executors.worker and returns one outcome per
shard; planning, retries and the merge live in cai.shards."""
from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, List

from cai.errors import CaiError
from cai.executors.base import ShardJob

MODULES = {"inprocess": "cai.executors.inprocess", "local": "cai.executors.local",
           "ray": "cai.executors.ray_actors", "slurm": "cai.executors.slurm"}
EXECUTORS = tuple(MODULES)


def check_executor(name: str, where: str) -> None:
    """A known executor name, or a clear error listing them."""
    if name not in MODULES:
        raise CaiError(f"{where}: executor {name!r} unknown; available: {', '.join(EXECUTORS)}")


def settings_of(name: str, executors: Any) -> Any:
    """The run-wide settings of executor `name` (cfg.executors.<name>; inprocess has none)."""
    return executors.get(name) if executors is not None and name != "inprocess" else None


def resources(name: str, executors: Any, jobs: int) -> str:
    """One line on where `jobs` shards would run and with what, for the plan (no cluster is contacted)."""
    return importlib.import_module(MODULES[name]).resources(settings_of(name, executors), jobs)


def run(name: str, executors: Any, jobs: List[ShardJob], on_result: Callable[[dict], None],
        where: str) -> Dict[int, dict]:
    """Run `jobs` on executor `name`; returns shard -> outcome (`error` set for a shard that did not finish)."""
    check_executor(name, where)
    return importlib.import_module(MODULES[name]).run(jobs, settings_of(name, executors), on_result, where)
