"""Option scoring as token ids, for every engine that scores options itself (hf, vllm, openai): prompts rendered the
same way (raw text as is, a chat continued from its final assistant turn, the spec's system prompt first), prompt
and options tokenized separately (lm-eval-harness style), and the options' common leading tokens moved into the
context, so one-token tails are read from one next-token distribution."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from cai.constitution.render import render_continuation

Chat = List[Dict[str, str]]


def tokenize_options(tokenizer: Any, system_prompt: Optional[str], prompts: Sequence[Union[str, Chat]],
                     options: Sequence[Sequence[str]]) -> Tuple[List[List[int]], List[List[List[int]]]]:
    """(prompt token ids, each option's token ids) per prompt."""
    texts = [p if isinstance(p, str) else render_continuation(p, tokenizer, system_prompt) for p in prompts]
    ids = [tokenizer(t, add_special_tokens=False).input_ids for t in texts]
    cache: Dict[str, List[int]] = {}
    option_ids = [[cache.setdefault(o, tokenizer(o, add_special_tokens=False).input_ids) for o in opts]
                  for opts in options]
    return ids, option_ids


@dataclass
class Item:
    """One prompt to score: its context (prompt + the options' common leading tokens) and each option's own tail."""

    index: int
    context: List[int]
    n_common: int
    tails: List[List[int]]

    @property
    def prompt_len(self) -> int:
        """Tokens before the options' common leading tokens."""
        return len(self.context) - self.n_common


def prepare(index: int, prompt: List[int], options: Sequence[List[int]]) -> Item:
    """Move the options' common leading tokens into the context, leaving every option at least one token."""
    if not prompt:
        raise ValueError(f"prompt {index} is empty: nothing predicts the first option token")
    if not options or any(not o for o in options):
        raise ValueError(f"prompt {index}: every option needs at least one token")
    common = 0
    shortest = min(len(o) for o in options)
    while common < shortest - 1 and all(o[common] == options[0][common] for o in options):
        common += 1
    return Item(index, prompt + list(options[0][:common]), common, [list(o[common:]) for o in options])
