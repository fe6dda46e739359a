"""Where a training stage's body runs: `inprocess`, `subprocess` (a child `python -m cai.launch`, so its
memory is freed when it exits) or `accelerate` (`accelerate launch --config_file conf/accelerate/<name>.yaml -m
cai.launch ...`). The parent streams the child's log and turns a failure into a CaiError with its last lines;
the child exits by itself if the parent dies (a killed run must not leave a trainer writing into the workdir).
"""
from __future__ import annotations

import collections
import importlib
import logging
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

from omegaconf import OmegaConf

from cai.accelerate_launch import accelerate_configs, plan_lines
from cai.errors import CaiError
from cai.registry import get_stage
from cai.stage_api import Input, StageContext, log
from cai.store import read_json, write_json

LAUNCHERS = ("inprocess", "subprocess", "accelerate")
TAIL_LINES = 40


def check_launcher(node_cfg, where: str) -> None:
    """A known launcher and accelerate config; logs the command a non-inprocess launcher will run."""
    if node_cfg.launcher not in LAUNCHERS:
        raise CaiError(f"{where}.launcher: {node_cfg.launcher!r} unknown; available: {', '.join(LAUNCHERS)}")
    configs = accelerate_configs()
    if node_cfg.launcher == "accelerate" and node_cfg.accelerate_config not in configs:
        raise CaiError(f"{where}.accelerate_config: {node_cfg.accelerate_config!r} unknown; available: "
                       f"{', '.join(configs)} (conf/accelerate/)")
    machines = int(node_cfg.get("machines") or 1)
    if machines < 1 or (machines > 1 and node_cfg.launcher != "accelerate"):
        raise CaiError(f"{where}.machines: {machines} needs launcher=accelerate and is at least 1")
    if node_cfg.launcher == "accelerate":
        for line in plan_lines(node_cfg, "WORKDIR/launch.json"):
            log.info("%s: launcher accelerate: %s", where, line)
    elif node_cfg.launcher != "inprocess":
        log.info("%s: launcher %s: %s", where, node_cfg.launcher, shlex.join(command(node_cfg, "WORKDIR/launch.json")))


def command(node_cfg, spec_file: Any) -> List[str]:
    """The child's command line (the same interpreter, so the same environment)."""
    if node_cfg.launcher == "accelerate":
        from cai.accelerate_launch import command as accelerate_command

        return accelerate_command(node_cfg, str(spec_file))
    return [sys.executable, "-m", "cai.launch", str(spec_file)]


def run(ctx: StageContext, body: str) -> Dict[str, Any]:
    """Run `body` ("module:function" taking the StageContext) as `ctx.cfg.launcher` says; return its metrics."""
    if ctx.cfg.launcher == "inprocess":
        return resolve(body)(ctx)
    spec, result = ctx.workdir / "launch.json", ctx.workdir / "launch_result.json"
    write_json(spec, {"body": body, **context_record(ctx)})
    result.unlink(missing_ok=True)
    cmd = command(ctx.cfg, spec)
    log.info("%s: launching %s", ctx.node, shlex.join(cmd))
    code, tail = stream(cmd, ctx.node)
    if code != 0 or not result.is_file():
        raise CaiError(f"pipeline.{ctx.node}: the {ctx.cfg.launcher} training process exited with code {code}; "
                       f"its last lines:\n" + "\n".join(tail))
    return read_json(result)


def stream(cmd: List[str], node: str) -> Tuple[int, List[str]]:
    """Run `cmd`, logging each output line as it comes; return its exit code and last lines."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "CAI_PARENT_PID": str(os.getpid())}
    tail: collections.deque = collections.deque(maxlen=TAIL_LINES)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            errors="replace")
    try:
        for line in proc.stdout:
            line = line.rstrip("\n").split("\r")[-1]  # progress bars redraw with \r: keep the last state
            if line.strip():
                tail.append(line)
                log.info("%s | %s", node, line)
        return proc.wait(), list(tail)
    finally:
        if proc.poll() is None:  # the parent is failing or interrupted: do not leave the trainer running
            proc.kill()
            proc.wait()


def context_record(ctx: StageContext) -> Dict[str, Any]:
    """The StageContext as JSON for the child (the engine test seam stays behind: training loads models itself)."""
    inputs = {slot: {"kind": i.kind, "target": i.target, "path": str(i.path) if i.path else None,
                     "spec": OmegaConf.to_container(i.spec, resolve=True) if i.spec is not None else None}
              for slot, i in ctx.inputs.items()}
    return {"node": ctx.node, "cfg": OmegaConf.to_container(ctx.cfg, resolve=True), "inputs": inputs,
            "workdir": str(ctx.workdir), "home": str(ctx.home), "seed": ctx.seed, "context": ctx.context}


def context_from(record: Dict[str, Any]) -> StageContext:
    """Rebuild the StageContext in the child, the node config typed by its stage schema again."""
    schema = get_stage(record["cfg"]["kind"]).schema
    cfg = OmegaConf.merge(OmegaConf.structured(schema), record["cfg"])
    inputs = {slot: Input(i["kind"], i["target"], path=Path(i["path"]) if i["path"] else None,
                          spec=OmegaConf.create(i["spec"]) if i["spec"] is not None else None)
              for slot, i in record["inputs"].items()}
    return StageContext(record["node"], cfg, inputs, Path(record["workdir"]), Path(record["home"]), record["seed"],
                        record["context"])


def resolve(body: str) -> Callable:
    """`module:function` -> the function, from cai itself or a registered stage's package only (launch.json sits
    in the store: what it names must not be able to import arbitrary code)."""
    module, _, name = body.partition(":")
    from cai.registry import all_stages

    allowed = {"cai"} | {kind.fn.__module__.split(".")[0] for kind in all_stages().values()}
    if module.split(".")[0] not in allowed:
        raise CaiError(f"training body {body!r}: not a module of cai or of a registered stage plugin")
    return getattr(importlib.import_module(module), name)


def exit_with_parent(parent_pid: int) -> None:
    """Exit when the launching cai process is gone (a SIGKILL gives it no chance to stop us)."""
    ppid = os.getppid()
    if ppid == parent_pid and sys.platform.startswith("linux"):
        import ctypes
        import signal

        # the kernel kills us with the parent (PR_SET_PDEATHSIG = 1); the thread below covers other platforms
        # and `accelerate launch`, where our parent is the launcher, not cai
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)

    def watch() -> None:
        while True:
            time.sleep(0.5)
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(137)
            if ppid == parent_pid and os.getppid() != ppid:  # reparented: the parent died (maybe unreaped)
                os._exit(137)

    threading.Thread(target=watch, daemon=True).start()


def main(argv: List[str]) -> None:
    """Child entry point: run the body recorded in the spec file, write its metrics (rank 0 only)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    record = read_json(Path(argv[0]))
    if os.environ.get("CAI_PARENT_PID"):
        exit_with_parent(int(os.environ["CAI_PARENT_PID"]))
    ctx = context_from(record)
    try:
        metrics = resolve(record["body"])(ctx)
    except CaiError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if int(os.environ.get("RANK", "0")) == 0:
        write_json(ctx.workdir / "launch_result.json", metrics)


if __name__ == "__main__":
    main(sys.argv[1:])
