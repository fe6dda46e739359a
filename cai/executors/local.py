"""executor=local: one worker process per visible GPU (or per CPU core) on this machine, each running its share of
the shards with one engine (`python -m cai.executors.worker`). A worker that dies fails only the shards it had not
finished; the others keep their rows, and a rerun resumes just those."""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from cai.executors.base import ShardJob, failure, job_record, worker_env
from cai.stage_api import log

TAIL_LINES = 30


def visible_gpus() -> List[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES when set, else every device torch sees."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d for d in listed.split(",") if d.strip() not in ("", "-1")]
    try:
        import torch
    except ImportError:
        return []
    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def slots(settings: Any) -> List[Optional[str]]:
    """One entry per worker: the CUDA_VISIBLE_DEVICES it gets (None on CPU)."""
    gpus, per = visible_gpus(), max(1, settings.gpus_per_worker)
    groups = [",".join(gpus[i:i + per]) for i in range(0, len(gpus) - per + 1, per)]
    count = settings.workers or len(groups) or os.cpu_count() or 1
    return [groups[i % len(groups)] if groups else None for i in range(count)]


def resources(settings: Any, jobs: int) -> str:
    """What the plan prints: how many workers, on which devices."""
    found = slots(settings)[:jobs]
    devices = [d for d in found if d is not None]
    where = f"GPUs {' | '.join(devices)}" if devices else "CPU"
    return f"{len(found)} worker process(es) on this machine ({where})"


def run(jobs: List[ShardJob], settings: Any, on_result: Callable[[dict], None], where: str) -> Dict[int, dict]:
    """Start the workers (jobs dealt round-robin), stream their logs, and collect one outcome per shard."""
    devices = slots(settings)[:len(jobs)]
    folder = jobs[0].logs
    folder.mkdir(parents=True, exist_ok=True)
    workers = [Worker(w, jobs[w::len(devices)], device, folder, where, len(devices)) for w, device in enumerate(devices)]
    outcomes: Dict[int, dict] = {}
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            outcomes.update(worker.finish(on_result))
    finally:
        for worker in workers:
            worker.kill()
    return outcomes


class Worker:
    """One worker process and its shards."""

    def __init__(self, index: int, jobs: List[ShardJob], device: Optional[str], folder: Path, where: str,
                 count: int):
        self.index, self.jobs, self.device, self.where = index, jobs, device, where
        self.spec, self.results = folder / f"worker{index}.json", folder / f"worker{index}.results.jsonl"
        self.threads = max(1, (os.cpu_count() or 1) // count)
        self.tail: collections.deque = collections.deque(maxlen=TAIL_LINES)
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        """Write the jobs and start the process (its GPUs, its share of the CPU threads, exiting with us)."""
        self.spec.write_text(json.dumps([job_record(job) for job in self.jobs], default=str), encoding="utf-8")
        self.results.unlink(missing_ok=True)
        extra = {"CAI_PARENT_PID": str(os.getpid()), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS",
                                                                                     str(self.threads))}
        if self.device is not None:
            extra["CUDA_VISIBLE_DEVICES"] = self.device
        self.proc = subprocess.Popen([sys.executable, "-m", "cai.executors.worker", str(self.spec), str(self.results)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                                     env=worker_env(extra))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        log.info("%s: worker %d (pid %d%s) runs shards %s", self.where, self.index, self.proc.pid,
                 f", GPUs {self.device}" if self.device else "", [j.shard for j in self.jobs])

    def _read(self) -> None:
        for line in self.proc.stdout:
            line = line.rstrip("\n").split("\r")[-1]
            if line.strip():
                self.tail.append(line)
                log.info("%s[w%d] | %s", self.where, self.index, line)

    def finish(self, on_result: Callable[[dict], None]) -> Dict[int, dict]:
        """Wait for the process; shards it reported are outcomes, the rest failed with its exit code and last lines."""
        code = self.proc.wait()
        self.reader.join(timeout=5)
        reported = {}
        if self.results.is_file():
            for line in self.results.read_text(encoding="utf-8").splitlines():
                result = json.loads(line)
                reported[result["shard"]] = result
                on_result(result)
        died = f"its worker process (pid {self.proc.pid}) exited with code {code}; last lines:\n" + "\n".join(self.tail)
        return {job.shard: reported.get(job.shard) or failure(job, died) for job in self.jobs}

    def kill(self) -> None:
        """Stop the process if it still runs (the parent is failing or interrupted)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
