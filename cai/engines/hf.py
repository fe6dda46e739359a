"""Batched transformers generation: left padding, length-sorted token-budget batches, per-row seeded sampling."""
from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from omegaconf import OmegaConf

from cai.compat import cache_arg
from cai.constitution.render import render_prompt
from cai.engines.base import ALL, Capabilities, Chat, EngineBase, EngineStats
from cai.engines.turn_cache import Layers, Reuse, TurnMemory, stacked_cache
from cai.errors import CaiError
from cai.registry import engine


class HFEngine(EngineBase):
    """Generation and option scoring with a transformers causal LM (bf16 on CPUs and GPUs that support it)."""

    name = "hf"

    def __init__(self, spec, home: Path):
        from cai.engines.growable_cache import GrowableLayer, growable_cache
        from cai.engines.shared_prefix import use_shared_prefix_attention
        from cai.models import load_causal_lm, load_tokenizer, quantize_for_inference

        self.spec = spec
        self.tokenizer = load_tokenizer(spec, home, padding_side="left")
        options = OmegaConf.to_container(spec.engine_options, resolve=True) if "engine_options" in spec else {}
        self.model = quantize_for_inference(load_causal_lm(spec, home, **options), spec.quantize)
        self.stats = EngineStats()
        self.stop_ids = stop_ids(self.tokenizer)
        self.min_shared_prefix = 32  # below this, re-encoding the prefix costs less than copying its cache
        full_attention = all(type(layer) is GrowableLayer for layer in growable_cache(self.model.config).layers)
        # a chat's next turn continues the keys/values of the sequence before it (full-attention caches only)
        self.reuse_turns = full_attention
        # the prefix every chat of a call shares is held once and attended by all rows (shared_prefix.py)
        self.share_prefix = full_attention and use_shared_prefix_attention(self.model)

    def render(self, chat: Chat) -> str:
        """The exact prompt text for a chat (chat template, or a Human:/Assistant: transcript)."""
        return render_prompt(chat, self.tokenizer, self.spec.system_prompt)

    def has_chat_template(self) -> bool:
        """Whether chats render through the model's own chat template (else a Human:/Assistant: transcript)."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    def describe(self) -> Dict[str, Any]:
        """Engine, library versions, the dtype the weights run in, the device."""
        import torch
        import transformers

        return {"engine": self.name, "version": f"transformers {transformers.__version__}, torch {torch.__version__}",
                "dtype": str(self.model.dtype).replace("torch.", ""), "device": str(self.model.device),
                "quantize": self.spec.quantize}

    def close(self) -> None:
        """Drop the model and tokenizer, and return their memory."""
        import torch

        self.model = self.tokenizer = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def session(self) -> "HFSession":
        """Successive calls continue each other's chats from their keys and values (critique after answer, ...)."""
        return HFSession(self)

    def choice_logprobs(self, prompts: List, options: List[List[str]]) -> List[List[float]]:
        """Per prompt (raw text, or a chat whose last assistant turn is continued), each option's log-prob summed
        over its tokens; one pass per prompt, options from its KV cache (cai/engines/hf_scoring.py)."""
        from cai.engines.hf_scoring import choice_logprobs

        return choice_logprobs(self, prompts, options)

    def generate(self, chats: List[Chat], sampling, seeds: Sequence[int]) -> List[str]:
        """One reply per chat, continuing nothing (see `session`)."""
        return self.generate_turn(chats, sampling, seeds, None, remember=False)[0]

    def generate_turn(self, chats: List[Chat], sampling, seeds: Sequence[int], turns: Optional[TurnMemory],
                      remember: bool = True) -> tuple:
        """(replies, memory of this call's sequences, if `remember`); rows continue `turns` where their prompts
        start with one. Batches are filled by a token budget, longest first, to cut padding; row i samples from
        seeds[i] only."""
        if len(seeds) != len(chats):
            raise ValueError(f"generate: {len(chats)} chats but {len(seeds)} seeds")
        began = time.perf_counter()
        encoded = [self.tokenizer(self.render(c), add_special_tokens=False).input_ids for c in chats]
        prefix = self._shared_prefix(encoded)
        start = prefix.length if self.share_prefix else 0
        reuses = self._reuses(encoded, prefix, start, turns)
        replies: List[str] = [""] * len(chats)
        memory = TurnMemory() if remember and self.reuse_turns else None
        own = [len(ids) - r.length for ids, r in zip(encoded, reuses)]
        for batch in self._batches(own, sampling.max_new_tokens):
            texts = self._generate_batch([encoded[i] for i in batch], [reuses[i] for i in batch],
                                         (start, prefix.layers if start else None), sampling,
                                         [seeds[i] for i in batch], memory)
            for index, text in zip(batch, texts):
                replies[index] = text
        self.stats.prompts += len(chats)
        self.stats.prompt_tokens += sum(map(len, encoded))
        self.stats.seconds += time.perf_counter() - began
        return replies, memory

    def _shared_prefix(self, encoded: List[List[int]]) -> Reuse:
        """The prefix every prompt shares (system prompt, few-shot exemplars) with its keys/values, computed once."""
        shared = shared_prefix_length(encoded, self.min_shared_prefix)
        return Reuse(shared, self._prefix_layers(encoded[0][:shared])) if shared else Reuse(0, None)

    def _reuses(self, encoded: List[List[int]], prefix: Reuse, start: int, turns: Optional[TurnMemory]) -> List[Reuse]:
        """Per prompt, the cached keys/values it starts from: the previous call's sequence it continues (a chat's
        next turn, when that covers more than the shared prefix by `min_shared_prefix` tokens), else the shared
        prefix (held once when `start` is its length, else copied into the row)."""
        base = Reuse(prefix.length, None) if start else prefix
        reuses = []
        for ids in encoded:
            floor = prefix.length + self.min_shared_prefix
            turn = turns.match(ids, floor, start) if turns is not None and self.reuse_turns else None
            self.stats.turn_tokens_reused += turn.length if turn else 0
            reuses.append(turn or base)
        return reuses

    def _prefix_layers(self, prefix: List[int]) -> Layers:
        """Keys and values of the prompt prefix every chat shares, computed once."""
        import torch

        from cai.engines.growable_cache import growable_cache

        cache = growable_cache(self.model.config)
        with torch.inference_mode():
            self.model(input_ids=torch.tensor([prefix], device=self.model.device), **cache_arg(cache), use_cache=True)
        self.stats.prefix_tokens_reused += len(prefix)
        return [(layer.keys[0], layer.values[0]) for layer in cache.layers]

    def _batches(self, lengths: List[int], max_new: int) -> List[List[int]]:
        by_length = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        batches, current, longest = [], [], 0
        for i in by_length:
            width = max(longest, lengths[i]) + max_new
            if current and (width * (len(current) + 1) > self.spec.max_batch_tokens
                            or len(current) >= self.spec.max_batch_size):
                batches.append(current)
                current, longest = [], 0
            current.append(i)
            longest = max(longest, lengths[i])
        return batches + ([current] if current else [])

    def _generate_batch(self, ids: List[List[int]], reuses: List[Reuse], prefix: tuple, sampling, seeds: List[int],
                        memory: Optional[TurnMemory]) -> List[str]:
        import torch
        from transformers import LogitsProcessorList

        from cai.engines.sampling import GumbelSampler, RepetitionPenalty
        from cai.engines.shared_prefix import attending

        start, prefix_layers = prefix
        input_ids, mask, cached = _layout(ids, reuses, start, self.tokenizer.pad_token_id, self.model.device)
        cache = stacked_cache(self.model.config, reuses, cached, start, prefix_layers)
        processors = []
        if sampling.repetition_penalty != 1.0:
            processors.append(RepetitionPenalty(sampling.repetition_penalty, mask))
        if sampling.do_sample:  # sampled by our processor (no full-vocabulary sort or multinomial), picked greedily
            processors.append(GumbelSampler(sampling.temperature, sampling.top_p, sampling.top_k, seeds))
        with torch.inference_mode(), attending(cache):
            out = self.model.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=sampling.max_new_tokens,
                                      do_sample=False, eos_token_id=self.stop_ids, **cache_arg(cache),
                                      pad_token_id=self.tokenizer.pad_token_id, repetition_penalty=1.0,
                                      logits_processor=LogitsProcessorList(processors))
        new = out[:, input_ids.shape[1]:]
        self.stats.generated_tokens += _count_until_stop(new, self.stop_ids)
        if memory is not None and self._room(memory, ids, start, new.shape[1]):
            fed = [row + tokens for row, tokens in zip(ids, new[:, :-1].tolist())]  # the last token was never fed
            memory.remember(cache, fed, torch.cat([mask, torch.ones_like(new[:, :-1])], dim=1), start)
        return self.tokenizer.batch_decode(new, skip_special_tokens=True)

    def _room(self, memory: TurnMemory, ids: List[List[int]], start: int, steps: int) -> bool:
        """Whether this batch's sequences fit the memory budget (the engine's batch token budget)."""
        return memory.tokens() + sum(len(row) - start + steps for row in ids) <= self.spec.max_batch_tokens


def _layout(ids: List[List[int]], reuses: List[Reuse], start: int, pad: int, device) -> tuple:
    """(input ids, attention mask, cached width) of a batch laid out as [shared prefix: `start` tokens][padding]
    [cached tokens][padding][own tokens]. Each row's cached keys/values sit right-aligned in the `cached` positions
    after the prefix; the mask hides both paddings (positions come from the mask's cumulative sum)."""
    import torch

    cached = max(r.length for r in reuses) - start
    width = max(len(row) - r.length for row, r in zip(ids, reuses))
    rows = []
    for row, r in zip(ids, reuses):
        before, after = cached - (r.length - start), width - (len(row) - r.length)
        rows.append((row[:start] + [pad] * before + row[start:r.length] + [pad] * after + row[r.length:],
                     [1] * start + [0] * before + [1] * (r.length - start) + [0] * after + [1] * (len(row) - r.length)))
    input_ids, mask = (torch.tensor(part, device=device) for part in zip(*rows))
    return input_ids, mask, cached


def shared_prefix_length(encoded: List[List[int]], minimum: int) -> int:
    """Tokens every prompt starts with (leaving each at least one of its own); 0 when fewer than `minimum`."""
    if len(encoded) < 2:
        return 0
    first, length = encoded[0], min(map(len, encoded)) - 1
    for row in encoded[1:]:
        common = next((i for i, (a, b) in enumerate(zip(first[:length], row)) if a != b), length)
        length = min(length, common)
    return length if length >= minimum else 0


def stop_ids(tokenizer) -> List[int]:
    """The end-of-sequence token and ChatML's end-of-turn token, where the tokenizer has them."""
    ids = {tokenizer.eos_token_id}
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
        ids.add(im_end)
    return sorted(i for i in ids if i is not None)


def _count_until_stop(new, stop_ids: List[int]) -> int:
    import torch

    is_stop = torch.isin(new, torch.tensor(stop_ids, device=new.device))
    # tokens up to and including the first stop token (all of them when a row never stopped)
    seen_stop = is_stop.cumsum(dim=1) - is_stop.int()
    return int((seen_stop == 0).sum())


class HFSession:
    """A conversation handle over an HFEngine: each call continues the previous call's sequences (turn reuse)."""

    def __init__(self, engine: HFEngine):
        self.engine, self.turns = engine, None

    def __enter__(self) -> "HFSession":
        return self

    def __exit__(self, *exc) -> None:
        self.turns = None  # the remembered keys and values go with the session

    def __getattr__(self, name: str) -> Any:  # stats, render, choice_logprobs, ... are the engine's
        return getattr(self.engine, name)

    def generate(self, chats: List[Chat], sampling, seeds: Sequence[int]) -> List[str]:
        """Replies that continue this session's previous call where a chat extends one of its sequences."""
        replies, self.turns = self.engine.generate_turn(chats, sampling, seeds, self.turns)
        return replies


OPTIONS = ("attn_implementation",)
"""`engine_options` the hf engine passes to from_pretrained (e.g. attn_implementation: eager | sdpa)."""


def check(spec, where: str) -> None:
    """Plan-time: only the from_pretrained arguments the engine passes on."""
    unknown = sorted(set(spec.get("engine_options") or {}) - set(OPTIONS))
    if unknown:
        raise CaiError(f"{where}.engine_options.{unknown[0]}: not an option of engine hf; available: "
                       f"{', '.join(OPTIONS)}")


@engine("hf", capabilities=lambda spec: Capabilities(can=ALL), check=check)
def hf_engine(spec, home) -> HFEngine:
    """Factory for `engine: hf`."""
    return HFEngine(spec, home)
