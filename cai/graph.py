"""Resolve `cfg.pipeline` into a checked DAG: references, artifact types, cycles, targets, order and content keys."""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException

from cai import sources
from cai.checks import check_node
from cai.engines.base import missing
from cai.errors import CaiError, first_line
from cai.keys import digest, model_key, semantic_config
from cai.models import check_spec
from cai.registry import StageKind, get_engine, get_stage
from cai.schema import ROLE_FALLBACKS


@dataclass
class Ref:
    """One resolved node input: another node, a model role, or an external source URI."""

    kind: str  # node | model | source
    target: str
    produces: str


@dataclass
class Node:
    """A planned node: its stage kind, config, resolved inputs and content key."""

    name: str
    stage: StageKind
    cfg: DictConfig
    inputs: Dict[str, Ref]
    key: str = ""
    context: Dict[str, Any] = field(default_factory=dict)


def _suggest(name: str, options: List[str]) -> str:
    close = difflib.get_close_matches(name, options, n=3)
    return f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(sorted(options)) or 'none'}"


def resolve_ref(ref: str, where: str, cfg: DictConfig) -> Ref:
    """Classify an input reference and check that what it names exists."""
    if sources.is_uri(ref):
        sources.parse_uri(ref)
        return Ref("source", ref, "data")
    if ref.startswith("models."):
        role = ref.split(".", 1)[1]
        if role not in cfg.models and ROLE_FALLBACKS.get(role) in cfg.models:
            role = ROLE_FALLBACKS[role]
        if role not in cfg.models:
            raise CaiError(f"{where}: unknown model role {ref!r}{_suggest(role, list(cfg.models))}")
        check_model(cfg.models[role], f"models.{role}")
        return Ref("model", role, "model")
    if ref not in cfg.pipeline:
        options = list(cfg.pipeline) + [f"models.{r}" for r in cfg.models]
        raise CaiError(f"{where}: unknown node {ref!r}{_suggest(ref, options)}")
    if cfg.pipeline[ref] is None:
        raise CaiError(f"{where}: node {ref!r} was dropped (pipeline.{ref}: null) but this node reads it; "
                       f"drop this node too, or point {where} elsewhere")
    return Ref("node", ref, get_stage(cfg.pipeline[ref].kind, f"pipeline.{ref}.kind").produces)


def build_nodes(cfg: DictConfig) -> Dict[str, Node]:
    """Every pipeline node with its inputs resolved and type-checked against what the stage consumes."""
    nodes = {}
    for name, node_cfg in cfg.pipeline.items():
        if node_cfg is None:  # a recipe may drop a node with `pipeline.<name>: null`
            continue
        stage = get_stage(node_cfg.kind, f"pipeline.{name}.kind")
        inputs = {}
        for slot, (ref, key) in _refs(stage, node_cfg, f"pipeline.{name}").items():
            if ref is None:
                continue
            where = f"pipeline.{name}.{key}"
            inputs[slot] = resolved = resolve_ref(str(ref), where, cfg)
            accepted = stage.consumes.get(slot.split(".")[0], ())
            if resolved.produces not in accepted and not (resolved.produces == "data" and "data" in accepted):
                raise CaiError(f"{where}: {ref!r} produces {resolved.produces!r} but {stage.name} needs "
                               f"{' or '.join(accepted)}")
        nodes[name] = Node(name, stage, node_cfg, inputs)
    return nodes


def _refs(stage: StageKind, node_cfg: DictConfig, where: str) -> Dict[str, Tuple[Any, str]]:
    """node_refs, with a node that lacks its stage's fields (e.g. `+pipeline.x={kind: sft}`) named, not a traceback."""
    try:
        return node_refs(stage, node_cfg, where)
    except InterpolationResolutionError as error:
        raise config_error(error, where) from None
    except OmegaConfBaseException as error:
        raise CaiError(f"{where}: {first_line(error)}; add a node by mounting a stage option, e.g. "
                       f"`+stage@{where}={stage.name}`, so it gets the stage's fields and defaults") from None


def node_refs(stage: StageKind, node_cfg: DictConfig, where: str = "pipeline.?") -> Dict[str, Tuple[Any, str]]:
    """slot -> (reference, config key): the node's `inputs`, plus references its stage keeps elsewhere (mixtures)."""
    refs = {}
    for slot, ref in (node_cfg.get("inputs") or {}).items():
        if OmegaConf.is_config(ref):  # a list or map of references (evaluate's models): the stage's hook expands it
            if not stage.refs:
                raise CaiError(f"{where}.inputs.{slot}: {stage.name} takes one reference here, not a list or map")
            continue
        refs[slot] = (ref, f"inputs.{slot}")
    if stage.refs:
        refs.update(stage.refs(node_cfg))
    return refs


def order(nodes: Dict[str, Node], targets: List[str]) -> List[Node]:
    """Topological order of the targets and their ancestors (all nodes when no targets); cycles are errors."""
    for target in targets:
        if target not in nodes:
            raise CaiError(f"targets: unknown node {target!r}{_suggest(target, list(nodes))}")
    done: List[str] = []
    visiting: List[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            cycle = " -> ".join(visiting[visiting.index(name):] + [name])
            raise CaiError(f"pipeline has a cycle: {cycle}")
        visiting.append(name)
        for ref in nodes[name].inputs.values():
            if ref.kind == "node":
                visit(ref.target)
        visiting.pop()
        done.append(name)

    for name in targets or list(nodes):
        visit(name)
    return [nodes[n] for n in done]


def check_model(spec: DictConfig, where: str) -> None:
    """Plan-time checks of a model role: its engine exists and accepts the spec; its weights where it loads them."""
    kind = get_engine(spec.engine, f"{where}.engine")
    if kind.check:  # first: a server engine's capabilities ask the server, which needs a checked spec
        kind.check(spec, where)
    check_spec(spec, where, local_weights=kind.capabilities(spec).local_weights)


def role_key(spec: DictConfig) -> str:
    """A model role's key, leaving out the engine options its engine says do not change the bytes."""
    return model_key(spec, get_engine(spec.engine).options_not_in_key)


def check_engines(node: Node, cfg: DictConfig) -> None:
    """What the node's stage needs of each model slot's engine (generate, next-token or continuation scoring),
    checked against what the engine declares; a node input that is a model runs on its artifact's spec, checked
    when that artifact exists."""
    needs = node.stage.needs(node.cfg) if node.stage.needs else {}
    for slot, needed in needs.items():
        ref = node.inputs.get(slot)
        if ref is None or ref.kind != "model":
            continue
        spec = cfg.models[ref.target]
        lacking = missing(needed, get_engine(spec.engine).capabilities(spec))
        if lacking:
            raise CaiError(f"pipeline.{node.name}.inputs.{slot}: {node.stage.name} needs {', '.join(lacking)} from "
                           f"models.{ref.target} (engine {spec.engine!r}), which does not offer it")


def assign_keys(plan: List[Node], cfg: DictConfig) -> None:
    """Key each node by kind, version, semantic config, context, inputs' keys or source ids, and the seed."""
    keys: Dict[str, str] = {}
    for node in plan:
        input_ids = {}
        for slot, ref in node.inputs.items():
            if ref.kind == "node":
                input_ids[slot] = keys[ref.target]
            elif ref.kind == "model":
                input_ids[slot] = role_key(cfg.models[ref.target])
            else:
                input_ids[slot] = sources.source_id(ref.target)
        node.context = node.stage.context(cfg, node.cfg) if node.stage.context else {}
        node.key = keys[node.name] = digest({
            "kind": node.stage.name, "version": node.stage.version, "config": semantic_config(node.cfg),
            "context": node.context, "inputs": input_ids, "seed": cfg.seed})


def plan(cfg: DictConfig) -> List[Node]:
    """The checked, ordered and keyed plan for `cfg.targets` (or the whole pipeline)."""
    nodes = build_nodes(cfg)
    if not nodes:
        raise CaiError("pipeline is empty: choose a recipe, e.g. `python -m cai recipe=smol`")
    planned = order(nodes, list(cfg.targets))
    for node in planned:  # checks before anything runs, dry runs included: keys and ranges, then the stage's own
        where = f"pipeline.{node.name}"
        check_node(node.cfg, node.stage.schema, where)
        resolvable(node.cfg, where)
        if node.stage.check:
            node.stage.check(node.cfg, where)
        check_engines(node, cfg)
    assign_keys(planned, cfg)
    return planned


def resolvable(node_cfg: DictConfig, where: str) -> None:
    """Every interpolation in the node resolves (e.g. ${cai.shared:...}); a failure names the key and the reason."""
    try:
        OmegaConf.to_container(node_cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as error:
        raise config_error(error, where) from None


def config_error(error: OmegaConfBaseException, where: str) -> CaiError:
    """An OmegaConf error as a CaiError naming the full key; a cai resolver's own message is quoted as it is."""
    full = getattr(error, "full_key", None) or ""
    key = full if full.startswith("pipeline.") else f"{where}.{full}" if full else where  # full keys may be rooted
    message = re.sub(r"^\w+ raised while resolving interpolation: ", "", first_line(error))
    return CaiError(f"{key}: {message}")


def describe_inputs(node: Node) -> List[Tuple[str, str]]:
    """(slot, reference) pairs for printing."""
    return [(slot, ("models." if r.kind == "model" else "") + r.target) for slot, r in node.inputs.items()]
