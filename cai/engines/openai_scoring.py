"""Option log-probs over an OpenAI-compatible /completions endpoint, prompts sent as token ids (rendered and
tokenized locally, exactly as the hf engine scores them): with `echo`, each option's tokens are read from the
prompt log-probs of prompt + option; with only `top_logprobs`, one-token options are read from the next token's top
log-probs (an option outside them gets the lowest log-prob returned, an upper bound, and is counted)."""
from __future__ import annotations

import logging
from typing import Any, List, Sequence

from cai.engines.options import Item, prepare, tokenize_options
from cai.errors import CaiError

log = logging.getLogger("cai")


def score(engine: Any, prompts: Sequence, options: Sequence[Sequence[str]]) -> List[List[float]]:
    """Per prompt, each option's log-prob summed over its tokens (and the options' common leading tokens)."""
    tokenizer = engine._tokenizer()
    ids, option_ids = tokenize_options(tokenizer, engine.spec.system_prompt, prompts, options)
    items = [prepare(i, p, o) for i, (p, o) in enumerate(zip(ids, option_ids))]
    engine.stats.prompt_tokens += sum(map(len, ids))
    if engine.scoring == "echo":
        requests = [(item, tail) for item in items for tail in item.tails]
        values = list(engine.pool.map(lambda r: echo_logprob(engine, *r), requests))
        out, at = [], 0
        for item in items:
            out.append(values[at:at + len(item.tails)])
            at += len(item.tails)
        return out
    if engine.scoring == "top_logprobs":
        if any(item.n_common or any(len(t) != 1 for t in item.tails) for item in items):
            raise CaiError(f"server {engine.spec.base_url} returns no prompt log-probs (no echo), so only options of "
                           f"one token each can be scored; these span several tokens (use a vLLM server)")
        return list(engine.pool.map(lambda item: next_token(engine, item, tokenizer), items))
    raise CaiError(f"server {engine.spec.base_url} returns no log-probs: it cannot score the judge's options")


def echo_logprob(engine: Any, item: Item, tail: List[int]) -> float:
    """log P(common tokens + tail | prompt) from the server's prompt log-probs of prompt + option."""
    tokens = item.context + tail
    out = engine._call(engine.client.completions.create, model=engine.model, prompt=tokens, max_tokens=1,
                       echo=True, logprobs=0, temperature=0.0)
    values = out.choices[0].logprobs.token_logprobs[:len(tokens)]
    return float(sum(values[len(tokens) - len(tail) - item.n_common:]))


def next_token(engine: Any, item: Item, tokenizer: Any) -> List[float]:
    """Each one-token option's log-prob from the next token's top log-probs."""
    out = engine._call(engine.client.completions.create, model=engine.model, prompt=item.context, max_tokens=1,
                       logprobs=int(engine.options["top_logprobs"]), temperature=0.0)
    top = dict(out.choices[0].logprobs.top_logprobs[0])
    texts = [tokenizer.decode(tail) for tail in item.tails]
    outside = [t for t in texts if t not in top]
    if outside:
        log.warning("option(s) %s outside the server's top %d log-probs: scored at the lowest returned",
                    outside, len(top))
    return [top.get(t, min(top.values())) for t in texts]
