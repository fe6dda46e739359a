"""Read a run directory as the report sees it: plan.json, the composed config, and each node's artifact files.

Artifacts are recognized by what their files hold, not by stage kind, so a run without some stage kind (or a stage
kind written later under another name) just lacks that section.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Dict, List, Optional

from cai.errors import CaiError
from cai.chunks import read_jsonl

# metrics.json lists of per-step dicts, richest first: TRL's log history, then the stages' trimmed curves.
CURVE_KEYS = ("log_history", "curve", "loss_curve")


@dataclass
class NodeView:
    """One planned node and, when it was computed, its artifact folder."""

    name: str
    kind: str
    key: str
    status: str
    inputs: Dict[str, str]
    path: Optional[Path]

    @cached_property
    def metrics(self) -> Dict[str, Any]:
        """metrics.json, or {} when absent or unreadable."""
        return _read_json(self.path / "metrics.json") if self.path else {}

    @cached_property
    def records(self) -> List[dict]:
        """data.jsonl rows, or [] when absent."""
        rows = read_jsonl(self.path / "data.jsonl") if self.path else []
        return [r for r in rows if isinstance(r, dict)]

    @cached_property
    def config(self) -> Dict[str, Any]:
        """The node's resolved config from node.yaml, or {}."""
        import yaml

        path = self.file("node.yaml")
        try:
            found = yaml.safe_load(path.read_text(encoding="utf-8")) if path else None
        except (OSError, yaml.YAMLError):
            return {}
        return found.get("config") or {} if isinstance(found, dict) else {}

    def file(self, name: str) -> Optional[Path]:
        """A file of the artifact, when it exists."""
        return self.path / name if self.path and (self.path / name).is_file() else None

    def is_sl(self) -> bool:
        """SL-CAI records: an initial answer and critique/revision rounds."""
        return bool(self.records) and {"initial", "rounds"} <= set(self.records[0])

    def is_labels(self) -> bool:
        """Labeled preference pairs with soft labels."""
        return bool(self.records) and "p_chosen" in self.records[0]

    def is_eval(self) -> bool:
        """An evaluate artifact: Elo scores in metrics, or side-by-side answers in data."""
        return isinstance(self.metrics.get("elo"), dict) or (bool(self.records) and "answers" in self.records[0])

    def steps(self) -> List[dict]:
        """Per-step training log rows (each has `step`), from the richest list metrics.json holds."""
        for key in CURVE_KEYS:
            rows = self.metrics.get(key)
            if isinstance(rows, list) and any(isinstance(r, dict) and "step" in r for r in rows):
                return [r for r in rows if isinstance(r, dict) and "step" in r]
        return []


@dataclass
class RunView:
    """A run directory: its plan, composed config (when known) and nodes in plan order."""

    dir: Path
    plan: Dict[str, Any]
    nodes: List[NodeView]
    config: Optional[Any] = None
    overrides: List[str] = field(default_factory=list)

    @property
    def recipe(self) -> str:
        """The recipe name recorded in plan.json."""
        return str(self.plan.get("recipe") or "?")


def load_run(run_dir: Path, cfg: Optional[Any] = None) -> RunView:
    """Read `run_dir`; `cfg` (the composed config, when the caller has it) wins over .hydra/config.yaml."""
    run_dir = Path(run_dir)
    plan_file = run_dir / "plan.json"
    if not plan_file.is_file():
        raise CaiError(f"{run_dir} is not a cai run directory (no plan.json); runs are under $CAI_HOME/runs/"
                       f"<recipe>/<time>/")
    plan = _read_json(plan_file)
    if not isinstance(plan.get("nodes"), list):
        raise CaiError(f"{plan_file}: no `nodes` list; is this a cai run directory?")
    nodes = [NodeView(n.get("node", "?"), n.get("kind", "?"), n.get("key", ""), n.get("status", "?"),
                      dict(n.get("inputs") or {}), artifact_path(run_dir, n)) for n in plan["nodes"]]
    return RunView(run_dir, plan, nodes, cfg if cfg is not None else _hydra_config(run_dir),
                   _overrides(run_dir))


def artifact_path(run_dir: Path, node: Dict[str, Any]) -> Optional[Path]:
    """The run's artifacts/<node> link, else the store path when it is finished; None when never computed."""
    link = run_dir / "artifacts" / str(node.get("node"))
    if link.is_dir():
        return link.resolve()
    stored = Path(node["path"]) if node.get("path") else None
    return stored if stored and (stored / "DONE.json").is_file() else None


def _hydra_config(run_dir: Path) -> Optional[Any]:
    from omegaconf import OmegaConf

    path = run_dir / ".hydra" / "config.yaml"
    return OmegaConf.load(path) if path.is_file() else None


def _overrides(run_dir: Path) -> List[str]:
    import yaml

    path = run_dir / ".hydra" / "overrides.yaml"
    found = yaml.safe_load(path.read_text()) if path.is_file() else None
    return [str(o) for o in found] if isinstance(found, list) else []


def _read_json(path: Path) -> Dict[str, Any]:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
