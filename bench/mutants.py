"""A small mutation check of the core math and flow: plant one-line faults, one at a time, in a copy of the tree, run
the tests that guard that code, and report which faults the suite caught. A missed one is a blind spot to cover.

    python bench/mutants.py                # every mutant (about 10 minutes on 2 cores)
    python bench/mutants.py --only seeds   # mutants whose name contains "seeds"
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNIT = "tests/unit"
# name, file, original text, mutated text, tests that should catch it
MUTANTS = [
    ("label: swapped order read as unswapped", "cai/feedback/labels.py",
     "return p_options[1] if swapped else p_options[0]", "return p_options[0] if swapped else p_options[1]", UNIT),
    ("label: clamp bounds inverted", "cai/feedback/labels.py",
     "return min(max(p, low), high)", "return max(min(p, low), high)", UNIT),
    ("label: ensemble keeps only the first principle", "cai/feedback/labels.py",
     "return mean([mean(orders) for orders in p_first_by_principle])",
     "return mean(p_first_by_principle[0])", UNIT),
    ("label: winner picked against the soft label", "cai/feedback/labels.py",
     "return (0, p_first_better) if p_first_better >= 0.5 else (1, 1.0 - p_first_better)",
     "return (1, p_first_better) if p_first_better >= 0.5 else (0, 1.0 - p_first_better)", UNIT),
    ("keys: limit left out of node keys", "cai/keys.py",
     '"chunk_size", "shards", "executor"}', '"chunk_size", "shards", "executor", "limit"}', "tests/unit tests/config"),
    ("keys: model spec's dtype left out of the key", "cai/keys.py",
     'MODEL_FIELDS_NOT_IN_KEY = {"max_batch_tokens", "max_batch_size", "api_key_env"}',
     'MODEL_FIELDS_NOT_IN_KEY = {"max_batch_tokens", "max_batch_size", "api_key_env", "dtype"}', UNIT),
    ("seeds: the turn left out of a row's seed", "cai/keys.py",
     'raw = hashlib.sha256(f"{seed}\\x1f{example_id}\\x1f{turn}".encode()).digest()',
     'raw = hashlib.sha256(f"{seed}\\x1f{example_id}".encode()).digest()', UNIT),
    ("sampling: the step left out of the Gumbel noise", "cai/engines/sampling.py",
     "state = _mix(seeds + _wrap((step + 1) * _GOLDEN))", "state = _mix(seeds + _wrap(_GOLDEN))", UNIT),
    ("sampling: seeds matched to the wrong rows", "cai/engines/sampling.py",
     "for s in seeds], dtype=torch.int64)[:, None]", "for s in seeds][::-1], dtype=torch.int64)[:, None]", UNIT),
    ("held-out: seen prompts not excluded", "cai/eval/heldout.py",
     'kept = [p for p in prompts if match_key(p["prompt"]) not in seen]', "kept = list(prompts)", UNIT),
    ("store: a folder without DONE.json counts as finished", "cai/store.py",
     "return (self.path(kind, key) / DONE).is_file()", "return self.path(kind, key).is_dir()", UNIT),
    ("SL-CAI: later rounds critique the initial answer", "cai/stages/critique_revision.py",
     "latest = [r or old for r, old in zip(revisions, latest)]", "latest = [old for r, old in zip(revisions, latest)]",
     UNIT),
    ("SL-CAI: the revision request sent as the critique request", "cai/stages/critique_revision.py",
     '{"role": "user", "content": principles[pid]["critique"]}]', '{"role": "user", "content": principles[pid]["revision"]}]',
     UNIT),
    ("resume: finished rows computed again", "cai/chunks.py",
     'todo = [item for item in items if item["id"] not in done]', "todo = list(items)", UNIT),
]


def run_mutant(name: str, path: str, original: str, mutated: str, tests: str) -> str:
    """'caught', 'MISSED', or why the mutant could not be planted."""
    with tempfile.TemporaryDirectory(prefix="cai-mutant-") as tmp:
        copy = Path(tmp) / "tree"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", "cai_home", "build", "*.egg-info",
                                                                  "__pycache__", ".pytest_cache"))
        target = copy / path
        text = target.read_text()
        if text.count(original) != 1:
            return f"not planted ({original!r} found {text.count(original)} times)"
        target.write_text(text.replace(original, mutated))
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "-m", "not integration and not slow", *tests.split()], cwd=copy,
                              capture_output=True, text=True)
        return "caught" if proc.returncode == 1 else "MISSED" if proc.returncode == 0 else f"error {proc.returncode}"


def main() -> int:
    """Plant each mutant, print a table, exit 1 when one was missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the mutants whose name contains this text")
    args = parser.parse_args()
    chosen = [m for m in MUTANTS if args.only in m[0]]
    results = []
    for mutant in chosen:
        started = time.perf_counter()
        outcome = run_mutant(*mutant)
        results.append(outcome)
        print(f"{outcome:8s} {time.perf_counter() - started:6.1f} s  {mutant[0]}", flush=True)
    caught = results.count("caught")
    print(f"\n{caught} of {len(chosen)} mutants caught")
    return 0 if caught == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())
