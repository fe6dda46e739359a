"""Run-wide config schemas: model specs, sampling settings, the constitution and the run itself.

Hydra validates every composed value against these dataclasses, so a misspelled or mistyped key fails at compose
time, naming the full key, before any model loads. Stage schemas live beside their stage code in `cai/stages/`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from omegaconf import MISSING


@dataclass
class ModelSpec:
    """Where a model comes from and how to load it."""

    source: str = "hub"
    """One of: hub (id + revision), local (path), gguf_package (a GGUF inside an installed pip package),
    tiny_random (a tiny random llama built offline, for tests)."""
    id: Optional[str] = None
    """Hub id for source=hub, e.g. mistralai/Mistral-7B-Instruct-v0.1."""
    revision: str = "main"
    path: Optional[str] = None
    """Local directory for source=local."""
    package: Optional[str] = None
    """pip package holding the GGUF for source=gguf_package."""
    file: Optional[str] = None
    """GGUF file name inside that package."""
    dtype: str = "auto"
    """auto (bf16 where the hardware supports it, else fp32), bfloat16, float16 or float32."""
    quantize: str = "none"
    """none, or int8: dynamic int8 Linear layers for generation and scoring on CPU (training loads full weights)."""
    chat_template: Optional[str] = None
    """Jinja chat template overriding the tokenizer's; null keeps the model's own."""
    system_prompt: Optional[str] = None
    """System message put before every chat; null keeps the template's default."""
    trust_remote_code: bool = False
    engine: str = "hf"
    """The engine that runs the model, by registered name: hf (transformers, in process), vllm (vllm.LLM, in
    process), openai (an OpenAI-compatible server at base_url), scripted (tests), or one a plugin registers. Part of
    the key: engines sample differently."""
    engine_options: Dict[str, Any] = field(default_factory=dict)
    """Passed through to the engine (e.g. vLLM's tensor_parallel_size, gpu_memory_utilization, max_model_len)."""
    base_url: Optional[str] = None
    """Server engines: the OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1."""
    api_key_env: Optional[str] = None
    """Server engines: the environment variable holding the API key (the key itself is never written anywhere)."""
    max_batch_tokens: int = 16384
    """Token budget of one generation batch (prompt + new tokens, summed over the batch)."""
    max_batch_size: int = 64


@dataclass
class Sampling:
    """Decoding settings, mounted per stage from conf/sampling/."""

    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0
    """0 disables top-k filtering."""
    do_sample: bool = True
    max_new_tokens: int = 128
    repetition_penalty: float = 1.0


@dataclass
class Principle:
    """A critique/revision principle (paper section 3.1): a critique request and a revision request."""

    critique: str = MISSING
    revision: str = MISSING
    weight: float = 1.0
    tags: List[str] = field(default_factory=list)


@dataclass
class ComparisonPrinciple:
    """A multiple-choice instruction for the feedback model (paper section 4.1)."""

    text: str = MISSING
    weight: float = 1.0
    tags: List[str] = field(default_factory=list)


@dataclass
class Message:
    """One chat message."""

    role: str = MISSING
    content: str = MISSING


@dataclass
class CritiqueRevisionExemplar:
    """A few-shot conversation: prompt, answer, critique request, critique, revision request, revision."""

    messages: List[Message] = MISSING


@dataclass
class LabelingExemplar:
    """A few-shot comparison: a conversation with a better and a worse response."""

    conversation: List[Message] = MISSING
    better: str = MISSING
    worse: str = MISSING
    principle: Optional[str] = None


@dataclass
class CotExemplar:
    """A chain-of-thought comparison exemplar; `principle_slot` text holds `{principle}` where the principle goes."""

    conversation: List[Message] = MISSING
    response_a: str = MISSING
    response_b: str = MISSING
    reasoning: str = MISSING
    answer: str = MISSING
    principle_slot: str = "{principle}"


@dataclass
class FewShot:
    """The few-shot exemplar groups of a constitution, keyed by id (entries shaped like the exemplar classes)."""

    critique_revision: Dict[str, Any] = field(default_factory=dict)
    labeling: Dict[str, Any] = field(default_factory=dict)
    cot: Dict[str, Any] = field(default_factory=dict)


@dataclass
class Constitution:
    """Principles and exemplars; `select` / `comparison_select` restrict which ids are sampled (empty: all).

    The id-keyed maps hold `Any` rather than the item classes above because OmegaConf refuses a plain dict added to
    a typed map from the command line (`+constitution.critique_revision.mine={critique: ..., revision: ...}`);
    cai.constitution.validate checks every entry against its class (fields, types, unknown keys) before any run."""

    name: str = MISSING
    description: str = ""
    critique_revision: Dict[str, Any] = field(default_factory=dict)
    comparison: Dict[str, Any] = field(default_factory=dict)
    select: List[str] = field(default_factory=list)
    comparison_select: List[str] = field(default_factory=list)
    fewshot: FewShot = field(default_factory=FewShot)


@dataclass
class CacheConfig:
    """How the store is used: use (hit when done), refresh (recompute targets), off (compute in a temp dir)."""

    mode: str = "use"


ROLE_FALLBACKS = {"eval_judge": "judge"}
"""Model roles that default to another: the evaluation's judge is the labeling judge unless set
(`+model@models.eval_judge=NAME`); the report warns when the two are one model."""


@dataclass
class LocalExecutor:
    """executor=local: worker processes on this machine, each with its own engine, reused across its shards."""

    workers: Optional[int] = None
    """null: one per visible GPU (CUDA_VISIBLE_DEVICES, else every GPU torch sees), else one per CPU core."""
    gpus_per_worker: int = 1
    """GPUs each worker sees (e.g. 2 for a tensor-parallel vLLM engine); ignored without GPUs."""
    retries: int = 0
    """Times a shard whose worker died is started again before the node fails naming it."""


@dataclass
class RayExecutor:
    """executor=ray: one Ray actor per worker, each opening its engine once for all the shards it runs."""

    address: Optional[str] = None
    """An existing cluster (`auto`, `ray://head:10001`); null starts a local one (or joins RAY_ADDRESS)."""
    actors: Optional[int] = None
    """null: as many as the cluster's free resources allow, at most one per shard."""
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    """Resources each actor requests (1 per actor on a GPU cluster)."""
    local_cpus: Optional[int] = None
    """CPUs of a local cluster started here (null: every core); ignored when joining a cluster."""
    init: Dict[str, Any] = field(default_factory=dict)
    """Extra ray.init arguments (`+executors.ray.init.object_store_memory=...`)."""
    retries: int = 0


@dataclass
class SlurmExecutor:
    """executor=slurm: submitit jobs (one array job), each running its shards with one engine."""

    cluster: str = "slurm"
    """slurm, or local (submitit's local executor: the same jobs as processes on this machine, for tests)."""
    partition: Optional[str] = None
    time_min: int = 240
    gpus_per_task: int = 1
    cpus_per_task: int = 8
    mem_gb: Optional[int] = None
    jobs: Optional[int] = None
    """Array tasks; null: one per shard."""
    array_parallelism: int = 256
    """How many array tasks Slurm runs at once."""
    additional: Dict[str, Any] = field(default_factory=dict)
    """Further sbatch options (account, qos, constraint, ...), as submitit's slurm_additional_parameters."""
    setup: List[str] = field(default_factory=list)
    """Shell lines run before each job (module load ..., source venv/bin/activate)."""
    retries: int = 1
    """Times a failed job (node failure, preemption, out of memory) is resubmitted before the node fails."""


@dataclass
class Executors:
    """Where sharded stages run their shards (`pipeline.<node>.shards` > 1), and each executor's settings."""

    default: str = "local"
    """The executor of a sharded node whose own `executor` is null: local, ray, slurm or inprocess."""
    local: LocalExecutor = field(default_factory=LocalExecutor)
    ray: RayExecutor = field(default_factory=RayExecutor)
    slurm: SlurmExecutor = field(default_factory=SlurmExecutor)


@dataclass
class RunConfig:
    """The composed run: the pipeline graph plus run-wide settings."""

    recipe_name: str = "${hydra:runtime.choices.recipe}"
    seed: int = 0
    home: str = "${oc.env:CAI_HOME,cai_home}"
    """Root of the artifact store and run directories ($CAI_HOME, default ./cai_home)."""
    targets: List[str] = field(default_factory=list)
    """Run only these nodes and their ancestors (empty: all)."""
    dry_run: bool = False
    """Print the plan and exit."""
    cache: CacheConfig = field(default_factory=CacheConfig)
    models: Dict[str, ModelSpec] = field(default_factory=dict)
    """Model roles by name (generator, base, judge, ...); a role in ROLE_FALLBACKS that is not set is its fallback."""
    sources: Dict[str, str] = field(default_factory=dict)
    """Named source URIs a recipe refers to as ${sources.NAME} (conf/sources/)."""
    shared_dir: Optional[str] = None
    """The folder of upstream files read in place (evals, constitutions) by ${cai.shared:...}; null: $CAI_SHARED."""
    constitution: Constitution = field(default_factory=Constitution)
    executors: Executors = field(default_factory=Executors)
    """Where shards run (not part of any key)."""
    pipeline: Dict[str, Any] = field(default_factory=dict)
