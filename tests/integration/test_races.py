"""Races on one store: two sweeps over overlapping configurations started together compute every shared node once
and all their jobs complete; a SIGKILLed lock holder blocks nobody (the waiter breaks its stale lock and resumes)."""
from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List

from cai.store import Store
from tests.conftest import ROOT

DATA = ["recipe=tiny", "targets=[sl_data,helpful,pairs,prefs]"]  # the data half of the graph: no training
RUNNING = re.compile(r"(\w+): running (\w+) \(key (\w+)\)")
WAITING = re.compile(r"\w+: another job is computing (\w+); waiting")


class Sweep:
    """`python -m cai -m ...` in the background, its output collected line by line."""

    def __init__(self, home: Path, *overrides: str):
        env = {**os.environ, "CAI_HOME": str(home), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "cai", "-m", *DATA, *overrides], cwd=ROOT, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: List[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self.reader.start()

    def wait(self, timeout: float = 900) -> str:
        self.proc.wait(timeout)
        self.reader.join(30)
        return "".join(self.lines)

    def has(self, pattern: str) -> bool:
        return any(re.search(pattern, line) for line in list(self.lines))


def computed(*logs: str) -> collections.Counter:
    """How many times each key was computed, over all the sweeps' logs."""
    return collections.Counter(m.group(3) for log in logs for m in RUNNING.finditer(log))


def planned_keys(home: Path) -> set:
    return {n["key"] for p in (home / "runs" / "multirun").glob("*/*/plan.json")
            for n in json.loads(p.read_text())["nodes"]}


def assert_store_clean(home: Path) -> None:
    """No partial left, no lock held, no owner record of a holder."""
    store = Store(home)
    assert not list((store.root / ".partial").iterdir())
    assert not list((store.root / ".locks").glob("*.owner"))
    for lock in (store.root / ".locks").glob("*.lock"):
        with store.lock(lock.name[:-len(".lock")], timeout=0):  # held by nobody: acquired at once
            pass


def test_two_overlapping_sweeps_compute_every_shared_node_once(tmp_path):
    first, second = Sweep(tmp_path, "pipeline.prefs.ensemble=1,2"), Sweep(tmp_path, "pipeline.prefs.ensemble=2,3")
    logs = [first.wait(), second.wait()]
    assert [first.proc.returncode, second.proc.returncode] == [0, 0], logs
    assert sum(log.count("run directory:") for log in logs) == 4  # every job of both sweeps completed
    counts = computed(*logs)
    assert set(counts) == planned_keys(tmp_path) and len(counts) == 6  # 3 shared nodes + prefs for 3 ensembles
    assert set(counts.values()) == {1}, counts  # nothing computed twice
    assert_store_clean(tmp_path)


def kill_a_lock_holder(sweeps: List[Sweep], store_root: Path) -> Sweep:
    """When one sweep waits for a key the other holds (its owner record says so), SIGKILL the holder; returns it."""
    deadline = time.time() + 600
    while time.time() < deadline and all(s.proc.poll() is None for s in sweeps):
        for waiter, holder in (sweeps, sweeps[::-1]):
            for key in WAITING.findall("".join(list(waiter.lines))):
                owner = store_root / ".locks" / f"{key}.owner"
                if owner.is_file() and f'"pid": {holder.proc.pid},' in owner.read_text():
                    holder.proc.send_signal(signal.SIGKILL)
                    holder.wait()
                    if f'"pid": {holder.proc.pid},' in owner.read_text():  # it died holding the lock
                        return holder
        time.sleep(0.02)
    raise AssertionError("the sweeps never waited on each other's lock")


def test_a_sigkilled_lock_holder_does_not_block_the_other_sweep(tmp_path):
    overrides = ["pipeline.prefs.ensemble=1", "pipeline.prefs.ensemble=2"]
    sweeps = [Sweep(tmp_path, o) for o in overrides]
    holder = kill_a_lock_holder(sweeps, tmp_path / "store")
    waiter = next(s for s in sweeps if s is not holder)
    log = waiter.wait()
    assert waiter.proc.returncode == 0, log
    assert f"broke the stale lock of pid {holder.proc.pid}" in log and "(no longer running)" in log
    rerun = Sweep(tmp_path, overrides[sweeps.index(holder)])
    rerun_log = rerun.wait()  # the killed sweep, run again: the shared nodes are cache hits now
    assert rerun.proc.returncode == 0, rerun_log
    assert not re.search(r"(sl_data|helpful|pairs): running", rerun_log)
    assert_store_clean(tmp_path)
