"""executor=slurm: the shards as one submitit array job on Slurm (partition, time, GPUs and CPUs per task from
`executors.slurm`), each task running its shards with one engine. A task that dies (node failure, preemption, out of
memory) is resubmitted `retries` times, then named in the error. `cluster: local` runs the same jobs through
submitit's local executor, as processes on this machine (how the tests run it)."""
from __future__ import annotations

from typing import Any, Callable, Dict, List

from omegaconf import OmegaConf

from cai.errors import CaiError
from cai.executors.base import ShardJob, failure
from cai.stage_api import log

CLUSTERS = ("slurm", "local")


def parameters(settings: Any, name: str) -> Dict[str, Any]:
    """submitit's update_parameters arguments from `executors.slurm`."""
    params = {"name": name, "timeout_min": settings.time_min, "gpus_per_node": settings.gpus_per_task,
              "cpus_per_task": settings.cpus_per_task, "tasks_per_node": 1, "nodes": 1}
    if settings.cluster == "slurm":
        params.update(slurm_array_parallelism=settings.array_parallelism,
                      slurm_additional_parameters=OmegaConf.to_container(settings.additional, resolve=True)
                      if OmegaConf.is_config(settings.additional) else dict(settings.additional),
                      slurm_setup=list(settings.setup))
        if settings.partition:
            params["slurm_partition"] = settings.partition
        if settings.mem_gb:
            params["mem_gb"] = settings.mem_gb
    return params


def resources(settings: Any, jobs: int) -> str:
    """What the plan prints (no cluster contacted)."""
    tasks = min(settings.jobs or jobs, jobs)
    partition = settings.partition or "the default partition"
    return (f"submitit {settings.cluster} array of {tasks} task(s) on {partition}: {settings.gpus_per_task} GPU, "
            f"{settings.cpus_per_task} CPUs{f', {settings.mem_gb} GB' if settings.mem_gb else ''} and "
            f"{settings.time_min} min each, {settings.array_parallelism} at once")


def run(jobs: List[ShardJob], settings: Any, on_result: Callable[[dict], None], where: str) -> Dict[int, dict]:
    """Submit one array job (jobs dealt round-robin over its tasks), wait for each task, one outcome per shard."""
    try:
        import submitit
    except ImportError:
        raise CaiError("executor slurm: submitit is not installed; pip install 'cai[cluster]'") from None
    if settings.cluster not in CLUSTERS:
        raise CaiError(f"executors.slurm.cluster: {settings.cluster!r} unknown; available: {', '.join(CLUSTERS)}")
    from cai.executors.worker import run_jobs

    executor = submitit.AutoExecutor(folder=str(jobs[0].logs / "submitit" / "%j"), cluster=settings.cluster)
    executor.update_parameters(**parameters(settings, f"cai-{where.split('.')[-1]}"))
    tasks = min(settings.jobs or len(jobs), len(jobs))
    groups = [jobs[t::tasks] for t in range(tasks)]
    submitted = executor.map_array(run_jobs, groups)
    log.info("%s: submitted %d submitit job(s) %s (logs in %s)", where, len(submitted),
             submitted[0].job_id.split("_")[0], jobs[0].logs / "submitit")
    try:
        return collect(submitted, groups, on_result)
    except BaseException:  # interrupted or failing: cancel what is queued or running (finished rows stay)
        for job in submitted:
            job.cancel(check=False)
        raise


def collect(submitted: List[Any], groups: List[List[ShardJob]], on_result: Callable[[dict], None]) -> Dict[int, dict]:
    """Wait for each task in turn; its shards' outcomes, or a failure naming the job and its state."""
    outcomes: Dict[int, dict] = {}
    for job, group in zip(submitted, groups):
        reason = f"submitit job {job.job_id} returned no result for it"
        try:
            results = {r["shard"]: r for r in job.result()}
        except Exception as err:  # noqa: BLE001 - a failed or killed task: its shards are named
            reason = f"submitit job {job.job_id} ({job.state}) failed: {str(err).strip().splitlines()[-1][:500]}"
            results = {}
        for shard_job in group:
            outcomes[shard_job.shard] = results.get(shard_job.shard) or failure(shard_job, reason)
            on_result(outcomes[shard_job.shard])
    return outcomes
