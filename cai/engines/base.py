"""The engine interface every stage generates through (hf, scripted; another backend plugs in by registering one)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Protocol

Chat = List[Dict[str, str]]


@dataclass
class EngineStats:
    """Counters an engine keeps so stages can report throughput."""

    prompts: int = 0
    generated_tokens: int = 0
    prompt_tokens: int = 0
    prefix_tokens_reused: int = 0
    turn_tokens_reused: int = 0
    """Prompt tokens taken from the previous call's keys/values (a chat's next turn) instead of encoded again."""
    seconds: float = 0.0


class Engine(Protocol):
    """Generate replies to chats with given sampling settings; `stats` accumulates counters."""

    stats: EngineStats

    def generate(self, chats: List[Chat], sampling, seed: int) -> List[str]:
        """One reply per chat, deterministic for a fixed seed and engine configuration."""
        ...

    def choice_logprobs(self, prompts: List, options: List[List[str]]) -> List[List[float]]:
        """Per prompt (raw text, or a chat whose final assistant turn is continued), the log-prob of each option
        string continuing it, summed over the option's tokens."""
        ...

    def has_chat_template(self) -> bool:
        """Whether chats render through the model's own chat template."""
        ...
