"""Stage kinds and engines by registered name, with "available: ..." errors instead of import paths."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, Mapping, Optional, Tuple


class CaiError(Exception):
    """A user-caused error: reported as one clear message and a non-zero exit, no traceback."""


def first_line(error: BaseException) -> str:
    """The first line of a library's error message (its type name when the message is empty), to quote in one."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@dataclass(frozen=True)
class StageKind:
    """A registered stage kind: its function, config schema, output type and the types its inputs consume."""

    name: str
    fn: Callable
    schema: type
    version: int
    produces: str
    consumes: Mapping[str, Tuple[str, ...]]
    context: Optional[Callable] = None
    """`(run_cfg, node_cfg) -> dict`: the run-wide config the stage reads (e.g. constitution parts); keyed too."""
    refs: Optional[Callable] = None
    """`node_cfg -> {slot: (reference, config key)}`: references kept outside `inputs` (e.g. weighted mixture
    sources); the graph resolves, type-checks (by the slot's name before the first dot) and keys them like inputs."""
    check: Optional[Callable] = None
    """`(node_cfg, where) -> None`: plan-time validation needing the stage's own libraries (e.g. building TRL's
    config from a pass-through dict); raises CaiError naming the key, before anything runs, dry runs included."""


STAGES: Dict[str, StageKind] = {}
ENGINES: Dict[str, Callable] = {}


def stage(name: str, *, schema: type, version: int, produces: str, consumes: Mapping[str, Tuple[str, ...]],
          context: Optional[Callable] = None, refs: Optional[Callable] = None, check: Optional[Callable] = None):
    """Register a stage function under `name`; bump `version` whenever its output for the same config changes."""

    def register(fn: Callable) -> Callable:
        STAGES[name] = StageKind(name, fn, schema, version, produces, dict(consumes), context, refs, check)
        return fn

    return register


def engine(name: str):
    """Register an engine factory `(model_dir, spec) -> Engine` under `name`."""

    def register(factory: Callable) -> Callable:
        ENGINES[name] = factory
        return factory

    return register


def get_stage(name: str, where: str = "kind") -> StageKind:
    """Look up a stage kind, naming the available ones when it is unknown."""
    _load_builtins()
    if name not in STAGES:
        raise CaiError(f"{where}: unknown stage kind {name!r}; available: {', '.join(sorted(STAGES))}")
    return STAGES[name]


def get_engine(name: str, where: str = "engine") -> Callable:
    """Look up an engine factory, naming the available ones when it is unknown."""
    _load_builtins()
    if name not in ENGINES:
        raise CaiError(f"{where}: unknown engine {name!r}; available: {', '.join(sorted(ENGINES))}")
    return ENGINES[name]


def _load_builtins() -> None:
    # Imported lazily so that composing a config never imports torch.
    import cai.engines  # noqa: F401
    import cai.stages  # noqa: F401
