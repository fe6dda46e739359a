"""Stage kinds and engines by registered name, with "available: ..." errors instead of import paths.

This is the one place that loads plugins: the built-in stage and engine modules by name, then any installed
package's entry points in the groups `cai.stages` and `cai.engines` (each names a module that registers on import).
Nothing here imports cai's stages or engines statically, so every layer may import the registry.
"""
from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Callable, Dict, Mapping, Optional, Tuple

from cai.errors import CaiError, first_line

log = logging.getLogger("cai")

BUILTIN_STAGES = ("critique_revision", "answer_prompts", "sft", "dpo", "sample_pairs", "label_preferences",
                  "feedback_accuracy", "judge_audit", "reward_model", "rl", "evaluate")
BUILTIN_ENGINES = ("hf", "scripted", "vllm", "openai")
PLUGIN_GROUPS = {"cai.stages": [f"cai.stages.{n}" for n in BUILTIN_STAGES],
                 "cai.engines": [f"cai.engines.{n}" for n in BUILTIN_ENGINES]}


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
    needs: Optional[Callable] = None
    """`node_cfg -> {slot: (capability, ...)}`: what the engine behind each model slot must offer (see
    cai.engines.base: generate, next_token, continuation); checked at plan time against the engine's declaration."""


@dataclass(frozen=True)
class EngineKind:
    """A registered engine: its factory `(spec, home) -> Engine`, what it can do, and its plan-time checks."""

    name: str
    factory: Callable
    capabilities: Callable
    """`spec -> Capabilities` (cai.engines.base); may depend on the spec (a server's features)."""
    check: Optional[Callable] = None
    """`(spec, where) -> None`: plan-time checks of the spec (the engine installed, options known, ...)."""
    options_not_in_key: Tuple[str, ...] = field(default=())
    """`engine_options` that change how it runs, not what it produces; left out of the model's key."""


STAGES: Dict[str, StageKind] = {}
ENGINES: Dict[str, EngineKind] = {}
_loaded = False


def stage(name: str, *, schema: type, version: int, produces: str, consumes: Mapping[str, Tuple[str, ...]],
          context: Optional[Callable] = None, refs: Optional[Callable] = None, check: Optional[Callable] = None,
          needs: Optional[Callable] = None):
    """Register a stage function under `name`; bump `version` whenever its output for the same config changes."""

    def register(fn: Callable) -> Callable:
        STAGES[name] = StageKind(name, fn, schema, version, produces, dict(consumes), context, refs, check, needs)
        return fn

    return register


def engine(name: str, *, capabilities: Callable, check: Optional[Callable] = None,
           options_not_in_key: Tuple[str, ...] = ()):
    """Register an engine factory `(spec, home) -> Engine` under `name`."""

    def register(factory: Callable) -> Callable:
        ENGINES[name] = EngineKind(name, factory, capabilities, check, tuple(options_not_in_key))
        return factory

    return register


def get_stage(name: str, where: str = "kind") -> StageKind:
    """Look up a stage kind, naming the available ones when it is unknown."""
    load_plugins()
    if name not in STAGES:
        raise CaiError(f"{where}: unknown stage kind {name!r}; available: {', '.join(sorted(STAGES))}")
    return STAGES[name]


def get_engine(name: str, where: str = "engine") -> EngineKind:
    """Look up an engine, naming the available ones when it is unknown."""
    load_plugins()
    if name not in ENGINES:
        raise CaiError(f"{where}: unknown engine {name!r}; available: {', '.join(sorted(ENGINES))}")
    return ENGINES[name]


def all_stages() -> Dict[str, StageKind]:
    """Every registered stage kind (built-in and plugins)."""
    load_plugins()
    return dict(STAGES)


def load_plugins() -> None:
    """Import the built-in stage and engine modules, then the plugins installed packages declare (once).

    Stage and engine modules import no torch at module level, so composing a config stays cheap."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for group, modules in PLUGIN_GROUPS.items():
        for module in modules:
            importlib.import_module(module)
        for point in entry_points(group=group):
            try:
                importlib.import_module(point.value.split(":")[0])
            except Exception as error:  # a broken plugin is named, and cai's own kinds still work
                raise CaiError(f"plugin {point.name!r} ({group} entry point {point.value!r}) failed to import: "
                               f"{type(error).__name__}: {first_line(error)}") from None
