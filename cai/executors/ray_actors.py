"""executor=ray: Ray actors with resource requests (`num_gpus`, `num_cpus`), on an existing cluster
(`executors.ray.address`) or a local one started here. Each actor opens its engine once and takes the next shard
whenever it finishes one; an actor that dies fails only the shard it was running, and a new actor takes the rest."""
from __future__ import annotations

import atexit
import os
from typing import Any, Callable, Dict, List

from omegaconf import OmegaConf

from cai.errors import CaiError
from cai.executors.base import ShardJob, error_text, failure, worker_env
from cai.stage_api import log


class ShardActor:
    """The Ray actor: a ShardWorker that lives as long as the actor."""

    def __init__(self) -> None:
        from cai.executors.worker import ShardWorker

        self.worker = ShardWorker()

    def run(self, job: ShardJob) -> dict:
        """One shard (a Python error comes back as the task's exception)."""
        return self.worker.run(job)


def connect(settings: Any) -> Any:
    """`ray`, initialized: the configured cluster, or a local one (shut down when cai exits)."""
    try:
        import ray
    except ImportError:
        raise CaiError("executor ray: Ray is not installed; pip install 'cai[cluster]' (or \"ray[default]\")") from None
    if not ray.is_initialized():
        options = OmegaConf.to_container(settings.init, resolve=True) if OmegaConf.is_config(settings.init) else dict(
            settings.init)
        env = {k: v for k, v in worker_env().items() if k == "PYTHONPATH"}
        address = settings.address or os.environ.get("RAY_ADDRESS")
        if address is None:  # a cluster of our own, on loopback ("local": never one that `ray start` left recorded)
            address, options = "local", {"num_cpus": settings.local_cpus, "_node_ip_address": "127.0.0.1", **options}
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=True, runtime_env={"env_vars": env},
                     **options)
        except (ConnectionError, ValueError, RuntimeError) as err:
            raise CaiError(f"executors.ray.address: cannot reach the Ray cluster {settings.address!r}: "
                           f"{str(err).splitlines()[0]}") from None
        atexit.register(ray.shutdown)
    return ray


def actor_count(ray: Any, settings: Any, jobs: int) -> int:
    """`actors`, else as many as the cluster's CPUs and GPUs hold at the requested sizes (at least one)."""
    if settings.actors:
        return min(settings.actors, jobs)
    total = ray.cluster_resources()
    fits = [int(total.get("CPU", 1) // settings.num_cpus)] if settings.num_cpus else []
    fits += [int(total.get("GPU", 0) // settings.num_gpus)] if settings.num_gpus else []
    return max(1, min([jobs, *fits]))


def resources(settings: Any, jobs: int) -> str:
    """What the plan prints (the cluster is not contacted)."""
    where = settings.address or "a local Ray cluster"
    count = settings.actors or "up to one per shard"
    return f"Ray actors ({count}) on {where}, each num_cpus={settings.num_cpus} num_gpus={settings.num_gpus}"


def run(jobs: List[ShardJob], settings: Any, on_result: Callable[[dict], None], where: str) -> Dict[int, dict]:
    """Keep every actor busy with the next pending shard until none is left; returns shard -> outcome."""
    ray = connect(settings)
    remote = ray.remote(num_cpus=settings.num_cpus, num_gpus=settings.num_gpus, max_restarts=0)(ShardActor)
    pending, running, outcomes = list(reversed(jobs)), {}, {}

    def submit(actor: Any) -> None:
        if pending:
            job = pending.pop()
            running[actor.run.remote(job)] = (actor, job)
        else:  # nothing left for it: its process (and the engine's memory) goes
            ray.kill(actor, no_restart=True)

    actors = [remote.remote() for _ in range(actor_count(ray, settings, len(jobs)))]
    log.info("%s: %d Ray actor(s) for %d shard(s)", where, len(actors), len(jobs))
    for actor in actors:
        submit(actor)
    while running:
        [ref], _ = ray.wait(list(running), num_returns=1)
        actor, job = running.pop(ref)
        try:
            outcomes[job.shard] = ray.get(ref)
        except ray.exceptions.RayActorError as err:  # the actor's process died: a fresh one takes the next shard
            outcomes[job.shard] = failure(job, f"its Ray actor died: {str(err).splitlines()[0]}")
            actor = remote.remote()
        except ray.exceptions.RayTaskError as err:
            outcomes[job.shard] = failure(job, error_text(err))
        on_result(outcomes[job.shard])
        submit(actor)
    return outcomes
