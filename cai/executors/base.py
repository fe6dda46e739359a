"""What every executor moves: a shard job (picklable, so Ray, submitit and worker processes can carry it), where its
files go, and the environment a worker starts with."""
from __future__ import annotations

import os
import socket
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import cai


@dataclass
class ShardJob:
    """One shard of one chunked output of a node: the items still to do, and how to rebuild the stage context."""

    record: Dict[str, Any]
    """cai.launch.context_record of the node's context (config, inputs, workdir, home, seed, constitution)."""
    slot: str
    """The model input whose engine processes the chunks."""
    process: Callable
    """`process(chunk, ctx, engine) -> rows`: a module-level function (or a partial of one), so it pickles."""
    items: List[dict]
    shard: int
    shards: int
    name: str
    """The output file, e.g. data.jsonl (the shard writes workdir/shards/<shard>of<shards>/<name>)."""
    what: str
    key: str
    """The node's key: shard locks and executor logs are named from it."""
    engine_factory: Any = None
    """Test seam, kept only by the inprocess executor (a factory does not travel to other processes)."""

    @property
    def label(self) -> str:
        """`shard 2 of 8` for messages (0-based, as the folder shards/2of8)."""
        return f"shard {self.shard} of {self.shards}"

    @property
    def lock(self) -> str:
        """The shard's lock in the store: the node's key plus which output and which shard of how many."""
        return f"{self.key}.{self.name}.shard{self.shard}of{self.shards}"

    @property
    def logs(self) -> Path:
        """Where executors keep their files for this node (worker specs and logs, submitit's folder)."""
        return Path(self.record["home"]) / "logs" / self.key

    @property
    def folder(self) -> Path:
        """Where the shard writes its rows."""
        return shard_folder(Path(self.record["workdir"]), self.shard, self.shards)


def job_record(job: ShardJob) -> Dict[str, Any]:
    """A job as JSON for a worker process: the process function by its `module:name` (resolved on the other side
    from cai or a registered stage package only, never unpickled), the test seam left behind."""
    fields = {k: getattr(job, k) for k in ("record", "slot", "items", "shard", "shards", "name", "what", "key")}
    return {**fields, "process": f"{job.process.__module__}:{job.process.__qualname__}"}


def job_from(record: Dict[str, Any]) -> ShardJob:
    """The job a worker process was given (`job_record`)."""
    from cai.launch import resolve

    return ShardJob(**{**record, "process": resolve(record["process"])})


def shard_folder(workdir: Path, shard: int, shards: int) -> Path:
    """workdir/shards/<i>of<K>: named by K too, so a rerun with another K never appends to a file of the old split."""
    return workdir / "shards" / f"{shard}of{shards}"


def failure(job: ShardJob, reason: str) -> Dict[str, Any]:
    """The outcome of a shard that did not finish."""
    return {"shard": job.shard, "error": reason, "host": socket.gethostname()}


def error_text(error: BaseException) -> str:
    """The last lines of a traceback: enough to name what failed without flooding the log."""
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    return "".join(lines[-3:]).strip()


def worker_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment for a worker process: this one's, with the folder holding the running `cai` first on
    PYTHONPATH (a worker imports the same checkout as the driver), and a parent pid it exits with."""
    root = str(Path(cai.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **(extra or {})}
