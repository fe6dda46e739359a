"""The stage API, below every stage and the training package: the fields every stage has, its resolved inputs,
and the context a stage function gets (config, inputs, work directory, seed, and the engines it opens)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

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
class ShardedStageConfig(StageConfig):
    """Fields of stages that work through their examples one engine call at a time: they can run in shards."""

    shards: int = 1
    """Split the examples into this many shards (example i goes to shard i % shards), each its own unit of work with
    its own resumable output and lock, merged in example order when all are done; 1 runs in the cai process as
    before. Per-example seeds make the merge byte-identical to one shard (not part of the key)."""
    executor: Optional[str] = None
    """Where the shards run: local (a worker process per GPU or CPU slot), ray, slurm (submitit), or inprocess (one
    after another in the cai process); null: the run-wide `executors.default` (not part of the key)."""


@dataclass
class Input:
    """A resolved input as a stage sees it."""

    kind: str  # node | model | source
    target: str
    path: Optional[Path] = None
    """Artifact folder of an upstream node."""
    spec: Optional[DictConfig] = None
    """Model spec of a model role."""
    key: Optional[str] = None
    """Content key of a model role (what identifies the model: two roles with one key are one model)."""


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
    engines_used: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    """slot -> what the engine opened for it describes (engine, version, dtype): recorded in lineage.json."""
    dispatch: Dict[str, Any] = field(default_factory=dict)
    """How sharded work runs (cai.shards): the node's key (for shard locks), its executor and the executors'
    run-wide settings; filled in by the runner, never keyed."""
    _open: List[Any] = field(default_factory=list)

    def engine(self, slot: str):
        """Open the engine for a model input (the spec's registered engine unless a test injected one); use it as
        a context manager (`with ctx.engine("judge") as judge:`) so it is closed when the stage is done with it."""
        spec = self.inputs[slot].spec
        if self.engine_factory is not None:
            opened = self.engine_factory(spec, self.home)
        else:
            from cai.registry import get_engine

            opened = get_engine(spec.engine, f"models.{self.inputs[slot].target}.engine").factory(spec, self.home)
        self._open.append(opened)
        self.engines_used[slot] = dict(opened.describe()) if hasattr(opened, "describe") else {}
        return opened

    def close_engines(self) -> None:
        """Close every engine the stage opened and left open (the runner calls this when the stage ends)."""
        while self._open:
            opened = self._open.pop()
            if hasattr(opened, "close"):
                opened.close()
