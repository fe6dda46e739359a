"""Batched transformers generation: left padding, length-sorted token-budget batches, seeded sampling."""
from __future__ import annotations

import time
from pathlib import Path
from typing import List

from cai.constitution.render import render_chat
from cai.engines.base import Chat, EngineStats
from cai.registry import engine


class HFEngine:
    """Generation with a transformers causal LM (bf16 on CPUs and GPUs that support it)."""

    def __init__(self, spec, home: Path):
        from cai.models import load_causal_lm, load_tokenizer, quantize_for_inference

        self.spec = spec
        self.tokenizer = load_tokenizer(spec, home, padding_side="left")
        self.model = quantize_for_inference(load_causal_lm(spec, home), spec.quantize)
        self.stats = EngineStats()
        self.stop_ids = _stop_ids(self.tokenizer)
        self.min_shared_prefix = 32  # below this, re-encoding the prefix costs less than copying its cache

    def render(self, chat: Chat) -> str:
        """The exact prompt text for a chat (chat template, or a Human:/Assistant: transcript)."""
        if self.spec.system_prompt and chat[0]["role"] != "system":
            chat = [{"role": "system", "content": self.spec.system_prompt}] + chat
        return render_chat(chat, self.tokenizer)

    def has_chat_template(self) -> bool:
        """Whether chats render through the model's own chat template (else a Human:/Assistant: transcript)."""
        return bool(getattr(self.tokenizer, "chat_template", None))

    def choice_logprobs(self, prompts: List, options: List[List[str]]) -> List[List[float]]:
        """Per prompt (raw text, or a chat whose last assistant turn is continued), each option's log-prob summed
        over its tokens; one pass per prompt, options from its KV cache (cai/feedback/forward.py)."""
        from cai.feedback.scorer import hf_choice_logprobs

        return hf_choice_logprobs(self, prompts, options)

    def generate(self, chats: List[Chat], sampling, seed: int) -> List[str]:
        """One reply per chat; batches are filled by a token budget, longest first, to cut padding."""
        import torch

        start = time.perf_counter()
        encoded = [self.tokenizer(self.render(c), add_special_tokens=False).input_ids for c in chats]
        shared = shared_prefix_length(encoded, self.min_shared_prefix)
        prefix = self._prefix_cache(encoded[0][:shared]) if shared else None
        replies: List[str] = [""] * len(chats)
        for number, batch in enumerate(self._batches([ids[shared:] for ids in encoded], sampling.max_new_tokens)):
            torch.manual_seed(seed * 100_003 + number)  # the same batches get the same draws on a rerun
            texts = self._generate_batch([encoded[i] for i in batch], sampling, shared, prefix)
            for index, text in zip(batch, texts):
                replies[index] = text
        self.stats.prompts += len(chats)
        self.stats.prompt_tokens += sum(map(len, encoded))
        self.stats.seconds += time.perf_counter() - start
        return replies

    def _prefix_cache(self, prefix: List[int]):
        """KV cache of the prompt prefix every chat shares (system prompt, few-shot exemplars), computed once."""
        import torch

        from cai.engines.growable_cache import growable_cache

        cache = growable_cache(self.model.config)
        with torch.inference_mode():
            self.model(input_ids=torch.tensor([prefix], device=self.model.device), cache=cache, use_cache=True)
        self.stats.prefix_tokens_reused += len(prefix)
        return cache

    def _batches(self, encoded: List[List[int]], max_new: int) -> List[List[int]]:
        by_length = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
        batches, current, longest = [], [], 0
        for i in by_length:
            width = max(longest, len(encoded[i])) + max_new
            if current and (width * (len(current) + 1) > self.spec.max_batch_tokens
                            or len(current) >= self.spec.max_batch_size):
                batches.append(current)
                current, longest = [], 0
            current.append(i)
            longest = max(longest, len(encoded[i]))
        return batches + ([current] if current else [])

    def _generate_batch(self, ids: List[List[int]], sampling, shared: int, prefix) -> List[str]:
        import copy

        import torch
        from transformers import LogitsProcessorList

        from cai.engines.growable_cache import growable_cache
        from cai.engines.sampling import GumbelSampler

        # [shared prefix][padding][own suffix]: the prefix's cached keys/values are reused by every row, and the
        # attention mask hides the padding in the middle (positions come from the mask's cumulative sum).
        width = max(len(row) for row in ids) - shared
        pad = self.tokenizer.pad_token_id
        input_ids = [row[:shared] + [pad] * (width - len(row) + shared) + row[shared:] for row in ids]
        mask = [[1] * shared + [0] * (width - len(row) + shared) + [1] * (len(row) - shared) for row in ids]
        device = self.model.device
        kwargs = dict(max_new_tokens=sampling.max_new_tokens, do_sample=False, eos_token_id=self.stop_ids,
                      repetition_penalty=sampling.repetition_penalty, pad_token_id=pad)
        if sampling.do_sample:  # sampled by our processor (no full-vocabulary sort or multinomial), picked greedily
            sampler = GumbelSampler(sampling.temperature, sampling.top_p, sampling.top_k)
            kwargs["logits_processor"] = LogitsProcessorList([sampler])
        if prefix is not None:
            cache = copy.deepcopy(prefix)
            cache.batch_repeat_interleave(len(ids))
            kwargs["cache"] = cache
        else:
            kwargs["cache"] = growable_cache(self.model.config)
        with torch.inference_mode():
            out = self.model.generate(input_ids=torch.tensor(input_ids, device=device),
                                      attention_mask=torch.tensor(mask, device=device), **kwargs)
        new = out[:, len(input_ids[0]):]
        self.stats.generated_tokens += _count_until_stop(new, self.stop_ids)
        return self.tokenizer.batch_decode(new, skip_special_tokens=True)


def shared_prefix_length(encoded: List[List[int]], minimum: int) -> int:
    """Tokens every prompt starts with (leaving each at least one of its own); 0 when fewer than `minimum`."""
    if len(encoded) < 2:
        return 0
    first, length = encoded[0], min(map(len, encoded)) - 1
    for row in encoded[1:]:
        common = next((i for i, (a, b) in enumerate(zip(first[:length], row)) if a != b), length)
        length = min(length, common)
    return length if length >= minimum else 0


def _stop_ids(tokenizer) -> List[int]:
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


@engine("hf")
def hf_engine(spec, home) -> HFEngine:
    """Factory for `engine: hf`."""
    return HFEngine(spec, home)
