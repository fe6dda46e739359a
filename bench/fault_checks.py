"""What bench/faults.py checks after a kill and after the rerun: the store's invariants, what the kill left in the
partial folder, whether the rerun resumed from it, and whether the artifact equals the uninterrupted run's.

Identity, per file: a data artifact's files are compared byte for byte except the run records DONE.json (when it
was published, checksums), lineage.json (when it was created) and metrics.json (wall times, tokens/s, and counts
of the work this process did); a training artifact's model/ folder is compared byte for byte (weights, config,
tokenizer, adapter), its run records and eval_before.json (evaluation runtime) left out.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

from cai.store import DONE, TMP_SUFFIX, check_folder  # noqa: F401  (TMP_SUFFIX: faults.py)

RUN_RECORDS = {DONE, "lineage.json", "metrics.json"}
TRAINING = ("sft", "dpo", "reward_model", "rl")


def jsonl_rows(path: Path) -> int:
    """Whole JSON lines in a file (a torn last line, cut by the kill, is not counted: the rerun drops it too)."""
    count = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            json.loads(line)
            count += 1
        except ValueError:
            pass
    return count


def snapshot(partial: Path) -> Dict[str, object]:
    """What a kill left behind: rows per JSONL file and the complete checkpoints (trainer_state.json written)."""
    if not partial.is_dir():
        return {"rows": {}, "checkpoints": []}
    rows = {p.name: jsonl_rows(p) for p in sorted(partial.glob("*.jsonl"))}
    done = [p.parent.name for p in partial.glob("checkpoints/checkpoint-*/trainer_state.json")]
    return {"rows": {k: v for k, v in rows.items() if v},
            "checkpoints": sorted(done, key=lambda n: int(n.split("-")[1]))}


def published_problems(store_root: Path) -> List[str]:
    """Every published artifact must verify (hash included): a kill may never leave one incomplete."""
    problems = []
    for done in sorted(store_root.glob(f"*/*/{DONE}")):
        if not done.parent.parent.name.startswith("."):
            problems += check_folder(done.parent, deep=True)
    for folder in sorted(p for p in store_root.glob("*/*") if p.is_dir() and not p.parent.name.startswith(".")):
        if not (folder / DONE).is_file():
            problems.append(f"{folder}: published folder without {DONE}")
    return problems


def leftovers(store_root: Path) -> List[str]:
    """After a successful rerun: nothing in .partial, no temp file anywhere in the store."""
    found = [f"{p}: partial left" for p in sorted((store_root / ".partial").iterdir())]
    return found + [f"{p}: temp file left" for p in sorted(store_root.rglob(f"*{TMP_SUFFIX}"))]


def resume_problems(kind: str, node: str, left: Dict[str, object], log: str) -> List[str]:
    """The rerun must say it resumed: from the last complete checkpoint, or the rows a data stage had written."""
    if left["checkpoints"]:
        last = left["checkpoints"][-1]
        return [] if f"{node}: resuming from {last}" in log else [f"the log does not say it resumed from {last}"]
    if kind not in TRAINING and left["rows"] and f"{node}: resuming, " not in log:
        return [f"rows were written ({left['rows']}) but the log does not say it resumed"]
    return []


def differing_files(kind: str, got: Path, reference: Path) -> List[str]:
    """Files that differ from the uninterrupted run's artifact (see the module docstring for what is compared)."""
    def compared(root: Path) -> Dict[str, bytes]:
        if kind in TRAINING:
            files = [p for p in (root / "model").rglob("*") if p.is_file()]
        else:
            files = [p for p in root.rglob("*") if p.is_file() and p.relative_to(root).as_posix() not in RUN_RECORDS]
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}

    mine, theirs = compared(got), compared(reference)
    return sorted(name for name in set(mine) | set(theirs) if mine.get(name) != theirs.get(name))


def load_problems(kind: str, artifact: Path) -> List[str]:
    """Open the artifact as a consumer would: every JSONL parses, hf/ loads; a model loads with transformers."""
    try:
        if kind in TRAINING:
            _load_model(kind, artifact / "model")
        else:
            for path in artifact.glob("*.jsonl"):
                [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
            if (artifact / "hf").is_dir():
                from datasets import load_from_disk

                load_from_disk(str(artifact / "hf"))
    except Exception as err:  # any failure to load is what this check reports
        return [f"{artifact}: does not load ({type(err).__name__}: {str(err)[:200]})"]
    return []


def _load_model(kind: str, folder: Path) -> None:
    import transformers

    cls = transformers.AutoModelForSequenceClassification if kind == "reward_model" else \
        transformers.AutoModelForCausalLM
    cls.from_pretrained(str(folder))
    if (folder / "adapter_config.json").is_file():  # base + unmerged LoRA adapter: the adapter must open too
        from safetensors import safe_open

        with safe_open(str(folder / "adapter_model.safetensors"), "pt") as adapter:
            assert list(adapter.keys()), "empty adapter"
