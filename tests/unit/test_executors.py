"""Executor settings as they reach the workers and the plan: GPUs dealt to local workers, submitit's parameters, and
the one-line resources each executor prints (no cluster contacted)."""
from __future__ import annotations

from omegaconf import OmegaConf

from cai import executors
from cai.executors import local, slurm
from cai.schema import Executors


def settings():
    return OmegaConf.structured(Executors)


def test_local_workers_get_their_own_gpus(monkeypatch):
    cfg = settings().local
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    assert local.slots(cfg) == ["0", "1", "2", "3"]
    cfg.gpus_per_worker = 2
    assert local.slots(cfg) == ["0,1", "2,3"]
    cfg.workers = 3  # more workers than GPU groups: they share, round-robin
    assert local.slots(cfg) == ["0,1", "2,3", "0,1"]
    assert executors.resources("local", settings(), 8) == "4 worker process(es) on this machine (GPUs 0 | 1 | 2 | 3)"


def test_local_workers_without_gpus_are_one_per_core(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert local.slots(settings().local) == [None, None]
    assert executors.resources("local", settings(), 3) == "2 worker process(es) on this machine (CPU)"


def test_slurm_parameters_reach_submitit():
    cfg = settings().slurm
    cfg.partition, cfg.mem_gb, cfg.setup = "gpu", 64, ["source venv/bin/activate"]
    cfg.additional = {"account": "cai", "qos": "high"}
    params = slurm.parameters(cfg, "cai-sl_data")
    assert params["slurm_partition"] == "gpu" and params["gpus_per_node"] == 1 and params["timeout_min"] == 240
    assert params["slurm_additional_parameters"] == {"account": "cai", "qos": "high"} and params["mem_gb"] == 64
    assert params["slurm_setup"] == ["source venv/bin/activate"]
    cfg.cluster = "local"  # submitit's local executor takes no slurm_ options
    assert not any(k.startswith("slurm_") for k in slurm.parameters(cfg, "x"))


def test_ray_resources_name_the_cluster_and_the_actor_size():
    cfg = settings()
    cfg.ray.address, cfg.ray.num_gpus = "ray://head:10001", 1
    assert executors.resources("ray", cfg, 4) == ("Ray actors (up to one per shard) on ray://head:10001, each "
                                                  "num_cpus=1.0 num_gpus=1.0")
