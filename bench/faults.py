"""Kill matrix (issue 18): for each stage kind on recipe=tiny, SIGKILL the run at seeded random moments inside that
stage, rerun the same command, and compare with an uninterrupted run. Exit 1 on any failure.

    python bench/faults.py --kinds all --kills 5 --seed 0 [--jobs 2] [--json results.json]

Per kind: one uninterrupted `targets=[node]` run times the stage (from its "<node>: running <kind>" line to its
DONE.json, and from its first output in .partial: a JSONL row, or a complete checkpoint for training) and must
equal the full reference run (determinism baseline).
Then each kill waits for the stage's start line (even kills) or its first output (odd kills), sleeps a seeded
random share of what is left of the stage, and SIGKILLs cai. A kill counts only if it landed inside the stage
(started, not yet published); otherwise it is retried with the range halved. After each kill every published artifact must verify; the
rerun must exit 0, resume what was left (the log says so), leave no .partial or temp file, and publish an artifact
that verifies, loads, and equals the reference (bench/fault_checks.py says what is compared).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import fault_checks as checks  # noqa: E402  (bench/ is on sys.path when run as a script)

NODES = {"critique_revision": "sl_data", "answer_prompts": "helpful", "sample_pairs": "pairs",
         "label_preferences": "prefs", "feedback_accuracy": "hhh", "evaluate": "eval", "sft": "sft", "dpo": "dpo",
         "reward_model": "rm", "rl": "rl"}
# feedback_accuracy is not in recipe=tiny: mounted at `hhh` on a small HHH-format file written here. Training
# nodes checkpoint every step, so most kills find a checkpoint to resume from.
EXTRA = ["+stage@pipeline.hhh=feedback_accuracy", "pipeline.hhh.chunk_size=4",
         *[f"pipeline.{n}.trainer.save_steps=1" for n in ("sft", "dpo", "rm", "rl")]]
MAX_ATTEMPTS = 6  # per counted kill: a kill that lands after the stage is over is retried, earlier each time


def write_evals(path: Path) -> str:
    """24 HHH-format rows (prompt, corrects, incorrects) for the feedback_accuracy node."""
    rows = [{"prompt": f"Human: Question {i}: which reply is kinder?\n\nA: reply {i}a\nB: reply {i}b\n\n"
                       f"Assistant: The answer is:", "corrects": [" A"], "incorrects": [" B"]} for i in range(24)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f"file://{path}"


class Home:
    """One CAI_HOME with its uninterrupted reference run; kinds run one at a time in it."""

    def __init__(self, folder: Path, overrides: List[str]):
        self.folder, self.overrides = folder, overrides
        self.store = folder / "store"
        self.env = {**os.environ, "CAI_HOME": str(folder), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
        self.plan: Dict[str, dict] = {}

    def command(self, node: str) -> List[str]:
        return [sys.executable, "-m", "cai", *self.overrides, f"targets=[{node}]"]

    def reference(self, nodes: List[str]) -> None:
        """The uninterrupted run every kill is compared with (its artifacts copied aside)."""
        proc = subprocess.run([sys.executable, "-m", "cai", *self.overrides, f"targets=[{','.join(nodes)}]"],
                              cwd=ROOT, env=self.env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"reference run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        plan_file = sorted(self.folder.glob("runs/**/plan.json"))[-1]
        self.plan = {n["node"]: n for n in json.loads(plan_file.read_text())["nodes"]}
        for node in nodes:
            shutil.copytree(self.plan[node]["path"], self.folder / "reference" / node, symlinks=True)

    def artifact(self, node: str) -> Path:
        return Path(self.plan[node]["path"])


class Attempt:
    """One run of the node's command, watched: when the stage started, when it first wrote output."""

    def __init__(self, home: Home, node: str, kind: str):
        self.home, self.node, self.kind, self.lines, self.started, self.output = home, node, kind, [], None, None
        self.proc = subprocess.Popen(home.command(node), cwd=ROOT, env=home.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, errors="replace")
        self.partial = home.store / ".partial" / home.plan[node]["key"]
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            if self.started is None and f"{self.node}: running " in line:
                self.started = time.monotonic()

    def watch(self, until: str) -> Optional[float]:
        """Wait for the stage's start ("start") or first output ("output"); the time it came, None if it exited."""
        while self.proc.poll() is None:
            if self.started is not None and self.output is None and _has_output(self.partial, self.kind):
                self.output = time.monotonic()
            moment = self.started if until == "start" else self.output
            if moment is not None:
                return moment
            time.sleep(0.01)
        return None

    def finish(self) -> str:
        self.proc.wait()
        self.reader.join()
        return "".join(self.lines)


def _has_output(partial: Path, kind: str) -> bool:
    """The stage's first output: a complete checkpoint (training), or a row in a JSONL file (data)."""
    if kind in checks.TRAINING:
        return any(partial.glob("checkpoints/checkpoint-*/trainer_state.json"))
    return any(p.stat().st_size > 0 for p in partial.glob("*.jsonl"))


def reset(home: Home, node: str) -> None:
    """Remove the node's artifact (and any partial), so the next command computes it."""
    shutil.rmtree(home.artifact(node), ignore_errors=True)
    shutil.rmtree(home.store / ".partial" / home.plan[node]["key"], ignore_errors=True)


def calibrate(home: Home, kind: str, node: str) -> Dict[str, object]:
    """An uninterrupted run of the node alone: the stage's length from its start and from its first output."""
    reset(home, node)
    attempt = Attempt(home, node, kind)
    attempt.watch("output")
    while attempt.proc.poll() is None and not (home.artifact(node) / "DONE.json").is_file():
        time.sleep(0.01)
    done = time.monotonic()
    log = attempt.finish()
    if attempt.proc.returncode != 0 or attempt.started is None:
        raise SystemExit(f"{node}: uninterrupted run failed:\n{log[-3000:]}")
    output = attempt.output or done
    differs = checks.differing_files(kind, home.artifact(node), home.folder / "reference" / node)
    return {"start": done - attempt.started, "output": done - output, "baseline_differs": differs}


def kill_once(home: Home, kind: str, node: str, index: int, rng: random.Random, window: Dict) -> Dict:
    """One counted kill (retried until it lands inside the stage), then the rerun and every check."""
    trigger, span = ("start" if index % 2 == 0 else "output"), 1.0
    for attempt_no in range(MAX_ATTEMPTS):
        reset(home, node)
        delay = rng.uniform(0, window[trigger] * span)
        span /= 2  # landed after the stage ended: the calibrated window was long for this run, aim earlier
        attempt = Attempt(home, node, kind)
        moment = attempt.watch(trigger)
        if moment is not None:
            time.sleep(max(0.0, moment + delay - time.monotonic()))
            attempt.proc.send_signal(signal.SIGKILL)
        attempt.finish()
        landed = attempt.started is not None and attempt.proc.returncode == -signal.SIGKILL and \
            not (home.artifact(node) / "DONE.json").is_file()
        if landed:
            break
    else:
        return {"landed": False, "problems": [f"no kill landed inside the stage in {MAX_ATTEMPTS} attempts"]}
    left = checks.snapshot(attempt.partial)
    problems = checks.published_problems(home.store)
    rerun = subprocess.run(home.command(node), cwd=ROOT, env=home.env, capture_output=True, text=True)
    log = rerun.stdout + rerun.stderr
    if rerun.returncode != 0:
        return {"landed": True, "left": left, "problems": [f"rerun exited {rerun.returncode}: {log[-1500:]}"]}
    problems += checks.published_problems(home.store) + checks.leftovers(home.store)
    problems += checks.resume_problems(kind, node, left, log)
    problems += checks.load_problems(kind, home.artifact(node))
    differs = checks.differing_files(kind, home.artifact(node), home.folder / "reference" / node)
    return {"landed": True, "trigger": trigger, "delay_s": round(delay, 3), "attempts": attempt_no + 1,
            "left": left, "resumed": bool(left["rows"] or left["checkpoints"]), "problems": problems,
            "differs": differs}


def run_kind(home: Home, kind: str, kills: int, seed: int) -> Dict:
    """Calibrate, then `kills` counted kills of one stage kind."""
    node = NODES[kind]
    window = calibrate(home, kind, node)
    results = [kill_once(home, kind, node, i, random.Random(f"{seed}:{kind}:{i}"), window) for i in range(kills)]
    for number, result in enumerate(results):
        for problem in result["problems"] + [f"differs: {f}" for f in result.get("differs", [])]:
            print(f"  {kind} kill {number}: {problem}", flush=True)
    return {"kind": kind, "node": node, "window_s": {k: round(window[k], 2) for k in ("start", "output")},
            "baseline_differs": window["baseline_differs"], "kills": results}


def summarize(rows: List[Dict]) -> bool:
    """Print the table; True when every kill of every kind recovered and was identical."""
    print(f"\n{'kind':<18} {'kills':>5} {'recovered':>9} {'identical':>9} {'resumed':>7}  stage s (start/output)")
    ok = True
    for row in rows:
        kills = [k for k in row["kills"] if k["landed"]]
        recovered = sum(not k["problems"] for k in kills)
        identical = sum(not k["problems"] and not k["differs"] for k in kills)
        resumed = sum(k["resumed"] for k in kills)
        ok &= recovered == identical == len(kills) == len(row["kills"]) and not row["baseline_differs"]
        print(f"{row['kind']:<18} {len(kills):>5} {recovered:>9} {identical:>9} {resumed:>7}  "
              f"{row['window_s']['start']:.1f}/{row['window_s']['output']:.1f}"
              + (f"  (uninterrupted runs differ: {row['baseline_differs']})" if row["baseline_differs"] else ""))
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default="all", help=f"comma-separated, or all: {', '.join(NODES)}")
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1, help="kinds run in this many homes at once")
    parser.add_argument("--json", type=Path, help="write every kill's record here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary homes")
    args = parser.parse_args()
    kinds = list(NODES) if args.kinds == "all" else args.kinds.split(",")
    unknown = [k for k in kinds if k not in NODES]
    if unknown:
        raise SystemExit(f"unknown kind {unknown[0]!r}; available: {', '.join(NODES)}")
    started, work = time.perf_counter(), Path(tempfile.mkdtemp(prefix="cai-faults-"))
    overrides = ["recipe=tiny", *EXTRA, f"pipeline.hhh.inputs.evals={write_evals(work / 'evals.jsonl')}"]
    shares = [kinds[i::args.jobs] for i in range(args.jobs) if kinds[i::args.jobs]]
    homes = [Home(work / f"home{i}", overrides) for i in range(len(shares))]

    def worker(home: Home, mine: List[str]) -> List[Dict]:
        home.reference([NODES[k] for k in mine])
        return [run_kind(home, kind, args.kills, args.seed) for kind in mine]

    with ThreadPoolExecutor(len(homes)) as pool:
        rows = [row for part in pool.map(worker, homes, shares) for row in part]
    rows.sort(key=lambda r: kinds.index(r["kind"]))
    ok = summarize(rows)
    print(f"\n{sum(len(r['kills']) for r in rows)} kills in {time.perf_counter() - started:.0f} s "
          f"({args.jobs} job{'s' if args.jobs > 1 else ''}, seed {args.seed}); "
          + ("all recovered and identical" if ok else "FAILURES above"))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
