"""What every stage gets: its config, resolved inputs, a work directory, a seed, and helpers to write outputs."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from omegaconf import MISSING, DictConfig

log = logging.getLogger("cai")


@dataclass
class StageConfig:
    """Fields every stage has."""

    kind: str = MISSING
    """Registered stage kind (critique_revision, sft, ...)."""
    num_samples: int = 20
    """How many examples samples.md shows (not part of the node key)."""
    log_every: int = 10
    """Progress logging cadence (not part of the node key)."""


@dataclass
class Input:
    """A resolved input as a stage sees it."""

    kind: str  # node | model | source
    target: str
    path: Optional[Path] = None
    """Artifact folder of an upstream node."""
    spec: Optional[DictConfig] = None
    """Model spec of a model role."""


@dataclass
class StageContext:
    """Everything a stage function may use; it writes only under `workdir`."""

    node: str
    cfg: DictConfig
    inputs: Dict[str, Input]
    workdir: Path
    home: Path
    seed: int
    context: Dict[str, Any] = field(default_factory=dict)
    engine_factory: Any = None
    """Test seam: `(spec, home) -> Engine`; None uses the engine the model spec names."""

    def engine(self, slot: str):
        """The engine for a model input (the spec's registered engine unless a test injected one)."""
        from cai.registry import get_engine

        spec = self.inputs[slot].spec
        factory = self.engine_factory or get_engine(spec.engine, f"models.{self.inputs[slot].target}.engine")
        return factory(spec, self.home)


def read_jsonl(path: Path) -> List[dict]:
    """Rows of a JSONL file; a torn last line (from a kill mid-write) is dropped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("dropping a torn line in %s (interrupted write)", path)
    return rows


def resume_jsonl(path: Path) -> List[dict]:
    """Rows already written by an interrupted run, rewriting the file without a torn last line."""
    rows = read_jsonl(path)
    if path.is_file() and len(rows) != len(path.read_text(encoding="utf-8").splitlines()):
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return rows


def append_jsonl(path: Path, rows: Iterable[dict]) -> None:
    """Append rows and flush to disk, so a kill loses at most the batch in flight."""
    import os

    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def resumable_chunks(ctx: StageContext, items: List[dict], engine: Any, process, what: str = "prompts",
                     name: str = "data.jsonl"):
    """Run `process(chunk) -> rows` over `items` chunk by chunk into workdir/`name`, skipping ids already there
    (a killed run resumes); returns the rows in `items` order and the throughput metrics."""
    from cai.progress import StageProgress

    out = ctx.workdir / name
    done = {row["id"] for row in resume_jsonl(out)}
    todo = [item for item in items if item["id"] not in done]
    if done:
        log.info("%s: resuming, %d of %d %s already done", ctx.node, len(done), len(items), what)
    with StageProgress(ctx.node, total=len(items), done=len(done), engine=engine) as progress:
        for start in range(0, len(todo), ctx.cfg.chunk_size):
            chunk = todo[start:start + ctx.cfg.chunk_size]
            append_jsonl(out, process(chunk))
            progress.advance(len(chunk))
    by_id = {row["id"]: row for row in resume_jsonl(out)}
    return [by_id[item["id"]] for item in items], progress.metrics()
