"""The accelerate launch command: one machine with a free rendezvous port; several nodes through srun, machine rank
and main address from the Slurm environment; a plan prints each node's command anywhere."""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from cai.accelerate_launch import command, hostnames, plan_lines
from cai.errors import CaiError


def node(machines: int = 1, config: str = "deepspeed_zero3"):
    return OmegaConf.create({"launcher": "accelerate", "accelerate_config": config, "machines": machines})


def test_slurm_nodelists_expand_without_scontrol(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert hostnames("gpu[01-03,07],login1") == ["gpu01", "gpu02", "gpu03", "gpu07", "login1"]
    assert hostnames("node7") == ["node7"]


def test_one_machine_runs_accelerate_with_a_port_of_its_own():
    cmd = command(node(), "spec.json")
    assert cmd[1:4] == ["-m", "accelerate.commands.launch", "--config_file"] and cmd[-3:] == ["-m", "cai.launch",
                                                                                           "spec.json"]
    assert int(cmd[cmd.index("--main_process_port") + 1]) > 0 and "--num_machines" not in cmd


def test_two_nodes_run_through_srun_with_rank_and_address_from_slurm(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "gpu[12-13]")
    cmd = command(node(2), "spec.json")
    assert cmd[:5] == ["srun", "--nodes", "2", "--ntasks-per-node", "1"] and cmd[-3:-1] == ["bash", "-c"]
    inner = cmd[-1]
    for part in ("--num_machines 2", "--num_processes 16", "--machine_rank $SLURM_NODEID", "--main_process_ip gpu12",
                 "--main_process_port 29500"):
        assert part in inner


def test_more_machines_than_the_allocation_or_no_allocation_is_named(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("SLURM_JOB_NODELIST", raising=False)
    with pytest.raises(CaiError, match="machines: 2 needs a Slurm allocation of 2 nodes"):
        command(node(2), "spec.json")
    monkeypatch.setenv("SLURM_JOB_NODELIST", "gpu1")
    with pytest.raises(CaiError, match="the Slurm allocation has 1"):
        command(node(2), "spec.json")


def test_a_plan_prints_every_nodes_command_outside_slurm(monkeypatch):
    monkeypatch.delenv("SLURM_JOB_NODELIST", raising=False)
    lines = plan_lines(node(2), "WORKDIR/launch.json")
    assert lines[0] == "srun --nodes 2 --ntasks-per-node 1 runs on each node:" and len(lines) == 3
    assert "--machine_rank 0" in lines[1] and "--machine_rank 1" in lines[2]
    assert '--main_process_ip "$(scontrol show hostnames $SLURM_JOB_NODELIST | head -n1)"' in lines[1]
