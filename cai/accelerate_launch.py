"""The `accelerate launch` command of a training stage, on one machine or over the nodes of a Slurm allocation.

One machine: `accelerate launch --config_file conf/accelerate/<name>.yaml --main_process_port <free> -m cai.launch
SPEC`. `machines: N` > 1: one accelerate launch per node through `srun --nodes N --ntasks-per-node 1`, each with
`--num_machines N --num_processes N*P --machine_rank $SLURM_NODEID --main_process_ip <first node>`, the first node
read from SLURM_JOB_NODELIST (`scontrol show hostnames`, or parsed when scontrol is not there)."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import yaml

from cai.errors import CaiError

PORT = 29500
"""The rendezvous port of multi-node runs (every node must agree on it), unless the config sets main_process_port."""
HEAD_NODE = "$(scontrol show hostnames $SLURM_JOB_NODELIST | head -n1)"
"""What a plan made outside Slurm prints for the main process's address (the shell on node 0 expands it)."""


def accelerate_configs() -> Dict[str, Path]:
    """The shipped accelerate configs by name (conf/accelerate/*.yaml)."""
    from cai.paths import conf_dir

    return {p.stem: p for p in sorted((conf_dir() / "accelerate").glob("*.yaml"))}


def free_port() -> int:
    """A free local TCP port for a one-machine run (two runs at once must not share a rendezvous port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hostnames(nodelist: str) -> List[str]:
    """The hosts of a Slurm nodelist (`gpu[01-02,05],login1`): scontrol when present, else parsed here."""
    if shutil.which("scontrol"):
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.split():
            return out.stdout.split()
    hosts = []
    for prefix, ranges, plain in re.findall(r"([^,\[]+)\[([^\]]+)\]|([^,\[\]]+)", nodelist):
        if plain:
            hosts.append(plain)
            continue
        for part in ranges.split(","):
            low, _, high = part.partition("-")
            hosts += [f"{prefix}{n:0{len(low)}d}" for n in range(int(low), int(high or low) + 1)]
    return hosts


def head_node(machines: int) -> str:
    """The first node of the Slurm allocation, or the shell expression that finds it (plans outside Slurm)."""
    nodelist = os.environ.get("SLURM_JOB_NODELIST")
    if not nodelist:
        return HEAD_NODE
    hosts = hostnames(nodelist)
    if len(hosts) < machines:
        raise CaiError(f"machines: {machines} nodes asked for, but the Slurm allocation has {len(hosts)} "
                       f"({nodelist}); sbatch/salloc with --nodes {machines}")
    return hosts[0]


def per_node(node_cfg, spec_file: str, rank: Optional[str] = None, port: Optional[str] = None) -> List[str]:
    """One node's accelerate launch (rank: its machine rank, or `$SLURM_NODEID` for srun to fill in; port: what a
    one-machine plan shows for the free port picked at launch)."""
    path = accelerate_configs()[node_cfg.accelerate_config]
    config = yaml.safe_load(path.read_text()) or {}
    machines = int(node_cfg.get("machines") or 1)
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(path)]
    if machines == 1:
        cmd += ["--main_process_port", str(config.get("main_process_port") or port or free_port())]
    else:
        processes = int(config.get("num_processes") or 1) * machines
        cmd += ["--num_machines", str(machines), "--num_processes", str(processes), "--machine_rank",
                rank or "$SLURM_NODEID", "--main_process_ip", head_node(machines),
                "--main_process_port", str(config.get("main_process_port") or PORT)]
    return [*cmd, "-m", "cai.launch", spec_file]


def command(node_cfg, spec_file: str) -> List[str]:
    """What the parent runs: the accelerate launch itself, or srun running it once per node."""
    machines = int(node_cfg.get("machines") or 1)
    if machines == 1:
        return per_node(node_cfg, spec_file)
    if not os.environ.get("SLURM_JOB_NODELIST"):
        raise CaiError(f"machines: {machines} needs a Slurm allocation of {machines} nodes (run cai inside "
                       f"sbatch or salloc --nodes {machines}); dry_run=true prints the commands anywhere")
    inner = shlex.join(per_node(node_cfg, spec_file, rank="RANK_HERE")).replace("RANK_HERE", "$SLURM_NODEID")
    return ["srun", "--nodes", str(machines), "--ntasks-per-node", "1", "--kill-on-bad-exit=1", "bash", "-c", inner]


def plan_lines(node_cfg, spec_file: str) -> List[str]:
    """The exact commands, one per node, as a dry run prints them."""
    machines = int(node_cfg.get("machines") or 1)
    if machines == 1:
        return [shlex.join(per_node(node_cfg, spec_file, port="FREE_PORT"))]
    lines = [f"srun --nodes {machines} --ntasks-per-node 1 runs on each node:"]
    for rank in range(machines):
        line = shlex.join(per_node(node_cfg, spec_file, rank=str(rank))).replace(shlex.quote(HEAD_NODE), f'"{HEAD_NODE}"')
        lines.append(f"  node {rank}: {line}")
    return lines
