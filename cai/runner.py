"""Run a plan: hit or compute each node in the store, link artifacts into the run dir, print a summary."""
from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml
from omegaconf import DictConfig, OmegaConf

from cai import graph, security
from cai.graph import Node
from cai.errors import CaiError
from cai.report import write_report
from cai.shard_plan import shard_plan
from cai.console import print_plan, print_shards, print_summary
from cai.keys import semantic_config
from cai.stage_api import Input, StageContext, log
from cai.store import DISK_ERRNOS, Store, StoreWriteError, atomic_write, read_json, write_failure, write_json

CACHE_MODES = ("use", "refresh", "off")


@dataclass
class NodeResult:
    """How one node went: cached or ran, where its artifact is, its metrics."""

    node: Node
    status: str
    path: Path
    seconds: float = 0.0
    metrics: Dict[str, Any] = field(default_factory=dict)


def node_status(node: Node, store: Store, mode: str) -> str:
    """cached, resume (a partial from an interrupted run) or run."""
    if mode == "use" and store.is_done(node.stage.name, node.key):
        return "cached"
    return "resume" if mode == "use" and store.partial(node.key).exists() else "run"


def run(cfg: DictConfig, run_dir: Path, engine_factory: Optional[Any] = None) -> List[NodeResult]:
    """Plan `cfg`, write plan.json into `run_dir`, and (unless dry_run) compute every node not in the store."""
    if cfg.cache.mode not in CACHE_MODES:
        raise CaiError(f"cache.mode: {cfg.cache.mode!r} unknown; available: {', '.join(CACHE_MODES)}")
    home = Path(cfg.home).resolve()
    store = Store(home)
    security.reject_targets(cfg)
    security.reject_secrets(cfg)
    check_constitution(cfg)
    plan = graph.plan(cfg)
    statuses = {n.name: node_status(n, store, cfg.cache.mode) for n in plan}
    shards = shard_plan(plan, cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    record = {**plan_record(cfg, plan, statuses, store), "shards": shards}
    write_json(run_dir / "plan.json", record)
    print_plan(plan, statuses, store)
    print_shards(shards)
    if record["trust_remote_code"]:
        log.warning("trust_remote_code: true for %s: Python code from those models' repositories will run",
                    ", ".join(record["trust_remote_code"]))
    if cfg.dry_run:
        return []
    results: List[NodeResult] = []
    paths: Dict[str, Path] = {}
    for node in plan:
        result = execute(node, cfg, store, paths, run_dir, engine_factory)
        paths[node.name] = result.path
        link(run_dir / "artifacts" / node.name, result.path)
        results.append(result)
    print_summary(results, run_dir)
    write_report(run_dir, cfg)  # report.md + plots/; a report failure only logs a warning
    return results


def check_constitution(cfg: DictConfig) -> None:
    """Nothing runs on a broken constitution: validate it (naming file and key) before planning."""
    from cai.constitution.files import job_loaded
    from cai.constitution.validate import validate_constitution

    constitution = cfg.constitution
    if OmegaConf.is_missing(constitution, "name") and not (constitution.critique_revision or constitution.comparison):
        return  # a recipe without a constitution (hhh_eval); one with principles but no name is reported
    validate_constitution(constitution, search_dirs=config_dirs(), loaded=job_loaded())


def config_dirs() -> List[Path]:
    """The file config dirs Hydra composed from (the user's hydra.searchpath ones too), package conf/ last."""
    from hydra.core.hydra_config import HydraConfig

    from cai.paths import conf_dir

    dirs = []
    if HydraConfig.initialized():
        dirs = [Path(s.path) for s in HydraConfig.get().runtime.config_sources if s.schema == "file"]
    return [d for d in dirs if d.is_dir()] + [conf_dir()]


def plan_record(cfg: DictConfig, plan: List[Node], statuses: Dict[str, str], store: Store) -> Dict[str, Any]:
    """plan.json: nodes in order with kind, key, status, inputs and artifact path; the models the plan loads with
    `trust_remote_code` (their repositories' Python code runs), and the store keys of converted models (gc)."""
    from cai.models import store_key

    roles = sorted({ref.target for n in plan for ref in n.inputs.values() if ref.kind == "model"})
    return {"recipe": cfg.recipe_name, "seed": cfg.seed, "cache_mode": cfg.cache.mode,
            "trust_remote_code": [f"models.{r}" for r in roles if cfg.models[r].trust_remote_code],
            "model_keys": {f"models.{r}": store_key(cfg.models[r]) for r in roles if store_key(cfg.models[r])},
            "nodes": [
        {"node": n.name, "kind": n.stage.name, "key": n.key, "status": statuses[n.name],
         "inputs": dict(graph.describe_inputs(n)), "path": str(store.path(n.stage.name, n.key))} for n in plan]}


def execute(node: Node, cfg: DictConfig, store: Store, paths: Dict[str, Path], run_dir: Path,
            engine_factory: Optional[Any]) -> NodeResult:
    """Return the cached artifact once verified, or compute it under the key's lock and publish it atomically."""
    kind, key, mode = node.stage.name, node.key, cfg.cache.mode
    if mode == "off":
        workdir = Path(tempfile.mkdtemp(prefix=f"{node.name}-", dir=run_dir))
        return compute(node, cfg, workdir, paths, engine_factory, publish=None)
    if mode == "use" and store.is_done(kind, key):
        hit, _ = lookup(node, store)
        if hit:
            return hit
    with store.lock(key, wait_message=lambda: log.info("%s: another job is computing %s; waiting", node.name, key)):
        if mode == "use" and store.is_done(kind, key):  # computed by a concurrent job while we waited, or damaged
            hit, problems = lookup(node, store)
            if hit:
                return hit
            moved = store.quarantine(kind, key)
            log.error("%s: the stored artifact %s is damaged, so it is recomputed (moved to %s): %s", node.name,
                      store.path(kind, key), moved, "; ".join(problems))
        if mode == "refresh":
            store.discard_partial(key)
        workdir = store.partial(key)
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            return compute(node, cfg, workdir, paths, engine_factory, publish=store)
        except BaseException as err:
            if {p.name for p in workdir.iterdir()} <= {"node.yaml"}:  # failed before any work: nothing to resume
                store.discard_partial(key)
            if is_write_failure(err):
                raise StoreWriteError(f"pipeline.{node.name}: " + write_failure(failed_path(err, workdir), err)
                                      + f"; the store is as it was, partial work stays in {workdir}") from None
            raise


def lookup(node: Node, store: Store) -> Tuple[Optional[NodeResult], List[str]]:
    """The published artifact as a cache hit if it verifies (cai.store: sizes, and hashes when small), else its
    problems, each naming the file."""
    kind, key = node.stage.name, node.key
    problems = store.check(kind, key)
    if problems:
        return None, problems
    return NodeResult(node, "cached", store.path(kind, key), metrics=_read_metrics(store.path(kind, key))), []


def is_write_failure(err: BaseException) -> bool:
    """A full disk or a file size limit, however the library that was writing reported it."""
    if isinstance(err, OSError) and err.errno in DISK_ERRNOS:
        return True
    if isinstance(err, (OSError, CaiError, KeyboardInterrupt)):  # a CaiError already names its path
        return False
    return any(os.strerror(code) in str(err) for code in DISK_ERRNOS)


def failed_path(err: BaseException, workdir: Path) -> Path:
    """The file a failed write was writing: the error's own filename, else the newest file in the workdir."""
    if isinstance(err, OSError) and err.filename:
        return Path(err.filename)
    files = [p for p in workdir.rglob("*") if p.is_file()]
    return max(files, key=lambda p: p.stat().st_mtime_ns) if files else workdir


def compute(node: Node, cfg: DictConfig, workdir: Path, paths: Dict[str, Path], engine_factory: Optional[Any],
            publish: Optional[Store]) -> NodeResult:
    """Run the stage function in `workdir`, write the provenance files, then publish (DONE.json last)."""
    log.info("%s: running %s (key %s)", node.name, node.stage.name, node.key)
    atomic_write(workdir / "node.yaml", node_yaml(node))
    ctx = StageContext(node.name, node.cfg, stage_inputs(node, cfg, paths), workdir, Path(cfg.home).resolve(),
                       cfg.seed, node.context, engine_factory)
    ctx.dispatch = {"key": node.key, "executors": cfg.get("executors")}  # where shards run (cai.shards); not keyed
    started = time.perf_counter()
    try:
        metrics = node.stage.fn(ctx) or {}
    finally:
        ctx.close_engines()
    seconds = time.perf_counter() - started
    metrics["stage_wall_s"] = seconds
    write_json(workdir / "metrics.json", metrics)
    write_json(workdir / "lineage.json", {**lineage(node, cfg, paths), "engines": ctx.engines_used})
    if not (workdir / "samples.md").exists():
        atomic_write(workdir / "samples.md", f"# {node.name}\n\nThis stage writes no samples.\n")
    path = publish.publish(node.stage.name, node.key, {"node": node.name, "seconds": seconds}) if publish else workdir
    return NodeResult(node, "ran", path, seconds, metrics)


def stage_inputs(node: Node, cfg: DictConfig, paths: Dict[str, Path]) -> Dict[str, Input]:
    """What each input slot resolves to for the stage function."""
    out = {}
    for slot, ref in node.inputs.items():
        path = paths.get(ref.target) if ref.kind == "node" else None
        spec = cfg.models[ref.target] if ref.kind == "model" else None
        key = graph.role_key(spec) if spec is not None else None
        if ref.kind == "node" and ref.produces == "model":
            spec = artifact_model_spec(path)
        out[slot] = Input(ref.kind, ref.target, path=path, spec=spec, key=key)
    return out


def artifact_model_spec(artifact: Path) -> DictConfig:
    """A model artifact as a ModelSpec: `model_spec.yaml` (dtype, engine, ...) written by the stage, path filled in
    here because the artifact moved from .partial to the store after it was written."""
    from cai.schema import ModelSpec

    spec = OmegaConf.structured(ModelSpec)
    written = artifact / "model_spec.yaml"
    if written.is_file():
        spec = OmegaConf.merge(spec, OmegaConf.load(written))
    spec.source, spec.path = "local", str(artifact / "model")
    return spec


def node_yaml(node: Node) -> str:
    """The resolved config that was hashed into the node's key."""
    body = {"kind": node.stage.name, "version": node.stage.version, "key": node.key,
            "config": semantic_config(node.cfg), "inputs": dict(graph.describe_inputs(node)),
            "context": node.context}
    return f"# node {node.name}: the resolved config hashed into key {node.key}\n" + yaml.safe_dump(
        body, sort_keys=False, allow_unicode=True, width=100)


def lineage(node: Node, cfg: DictConfig, paths: Dict[str, Path]) -> Dict[str, Any]:
    """Where the artifact came from: inputs (keys, model specs, source ids), seed, recipe."""
    from cai import sources

    inputs = {}
    for slot, ref in node.inputs.items():
        if ref.kind == "node":
            inputs[slot] = {"node": ref.target, "path": str(paths[ref.target])}
        elif ref.kind == "model":
            inputs[slot] = {"model_role": ref.target, "spec": OmegaConf.to_container(cfg.models[ref.target]),
                            "key": graph.role_key(cfg.models[ref.target])}
        else:
            inputs[slot] = {"source": ref.target, "id": sources.source_id(ref.target)}
    return {"node": node.name, "kind": node.stage.name, "version": node.stage.version, "key": node.key,
            "seed": cfg.seed, "recipe": cfg.recipe_name, "inputs": inputs, "created": time.time()}


def link(at: Path, target: Path) -> None:
    """Point `at` to `target` (replacing an older link)."""
    at.parent.mkdir(parents=True, exist_ok=True)
    if at.is_symlink() or at.exists():
        at.unlink()
    os.symlink(target, at, target_is_directory=True)


def _read_metrics(path: Path) -> Dict[str, Any]:
    return read_json(path / "metrics.json") if (path / "metrics.json").is_file() else {}
