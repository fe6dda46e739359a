"""Races (issue 18): two full recipe=tiny sweeps over overlapping configurations, started together on one store,
then the same again with the holder of a shared node's lock SIGKILLed mid-stage. Prints jobs completed, keys
planned, keys computed, keys computed twice (must be 0; the node the killed sweep was computing counts once, for
the sweep that resumed it), and what is left in the store (partials, held locks, owner records: must be 0). Exit 1
on any failure.

    python bench/races.py
"""
from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from cai.errors import CaiError  # noqa: E402
from cai.store import Store  # noqa: E402

SWEEPS = (["pipeline.rl.beta=0.05,0.1"], ["pipeline.rl.beta=0.1,0.2"])  # rl beta=0.1 and every node upstream shared
RUNNING = re.compile(r"(\w+): running (\w+) \(key (\w+)\)")
WAITING = re.compile(r"\w+: another job is computing (\w+); waiting")


def start(home: Path, overrides: List[str]):
    """A sweep in the background; its output lines are collected into `proc.lines`."""
    env = {**os.environ, "CAI_HOME": str(home), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cai", "-m", "recipe=tiny", *overrides], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    proc.lines = []
    proc.reader = threading.Thread(target=lambda: proc.lines.extend(proc.stdout), daemon=True)
    proc.reader.start()
    return proc


def finish(proc) -> str:
    proc.wait()
    proc.reader.join(30)
    return "".join(proc.lines)


def leftovers(home: Path) -> Dict[str, int]:
    """Partials, locks still held, and owner records in the store."""
    store, held = Store(home), 0
    for lock in (store.root / ".locks").glob("*.lock"):
        try:
            with store.lock(lock.name[:-len(".lock")], timeout=0):
                pass
        except CaiError:
            held += 1
    return {"partials": len(list((store.root / ".partial").iterdir())), "held_locks": held,
            "owner_records": len(list((store.root / ".locks").glob("*.owner")))}


def kill_holder(procs, store_root: Path, after: str = "sft"):
    """Once one sweep waits for a key of node `after` or later that the other holds (its owner record says so),
    SIGKILL the holder mid-stage; returns it (None if they never met)."""
    seen_after = False
    while all(p.poll() is None for p in procs):
        for waiter, holder in (procs, procs[::-1]):
            text = "".join(list(waiter.lines))
            seen_after = seen_after or f"{after}: " in text
            for key in WAITING.findall(text) if seen_after else []:
                owner = store_root / ".locks" / f"{key}.owner"
                if owner.is_file() and f'"pid": {holder.pid},' in owner.read_text():
                    holder.send_signal(signal.SIGKILL)
                    holder.wait()
                    return holder
        time.sleep(0.02)
    return None


def scenario(home: Path, kill: bool) -> Dict:
    """Both sweeps at once; with `kill`, SIGKILL whichever holds a lock the other waits for (from sft on, so it
    dies training), then run the killed sweep again."""
    procs = [start(home, s) for s in SWEEPS]
    killed = kill_holder(procs, home / "store") if kill else None
    logs = [finish(p) for p in procs]
    codes, final = [p.returncode for p in procs], list(logs)  # final: the log of each sweep's last run
    if killed is not None:
        again = start(home, SWEEPS[procs.index(killed)])
        logs.append(finish(again))
        codes[procs.index(killed)], final[procs.index(killed)] = again.returncode, logs[-1]
    starts = [[m.group(3) for m in RUNNING.finditer(log)] for log in logs]
    if killed is not None:  # the node it was computing when killed: finished (resumed) by the other sweep
        interrupted = starts[procs.index(killed)].pop()
    computed = collections.Counter(key for keys in starts for key in keys)
    planned = {n["key"] for p in (home / "runs" / "multirun").glob("*/*/plan.json")
               for n in json.loads(p.read_text())["nodes"]}
    return {"scenario": "one holder SIGKILLed" if kill else "both complete", "killed": killed is not None,
            "jobs_completed": sum(log.count("run directory:") for log in final),
            "exit_codes": codes, "planned": len(planned), "computed": len(computed),
            "computed_twice": sum(c > 1 for c in computed.values()),
            "interrupted": 1 if killed is not None and interrupted in computed else 0,
            "stale_lock_broken": any("broke the stale lock" in log for log in logs), **leftovers(home)}


def main() -> None:
    started, rows = time.perf_counter(), []
    for kill in (False, True):
        with tempfile.TemporaryDirectory(prefix="cai-races-") as tmp:
            rows.append(scenario(Path(tmp), kill))
    print(f"\n{'scenario':<22} {'jobs ok':>7} {'keys':>5} {'computed':>8} {'twice':>5} {'resumed':>7} "
          f"{'stale lock':>10} {'partials':>8} {'held':>4} {'records':>7}")
    ok = True
    for r in rows:
        ok &= r["exit_codes"] == [0, 0] and r["jobs_completed"] == 4 and r["computed_twice"] == 0
        ok &= r["computed"] == r["planned"] and r["partials"] == r["held_locks"] == r["owner_records"] == 0
        ok &= r["stale_lock_broken"] or not r["killed"]
        print(f"{r['scenario']:<22} {r['jobs_completed']:>7} {r['planned']:>5} {r['computed']:>8} "
              f"{r['computed_twice']:>5} {r['interrupted']:>7} {str(r['stale_lock_broken']):>10} {r['partials']:>8} "
              f"{r['held_locks']:>4} "
              f"{r['owner_records']:>7}")
    verdict = "all jobs completed, nothing computed twice" if ok else "FAILED"
    print(f"\n{time.perf_counter() - started:.0f} s; {verdict}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
