"""The engine seam: every stage generates and scores through an Engine, which owns all model I/O.

An engine declares what it can do (`Capabilities`), checked at plan time against what each stage needs; it is opened
per stage and closed when the stage ends (`with ctx.engine("judge") as judge:`); it keeps no state between callers
(multi-turn reuse lives in an explicit `session()`); and it draws each row's tokens from that row's own seed, so
batching, chunking, resuming and sharding never change the bytes for a fixed engine and dtype.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, List, Protocol, Sequence, Union

Chat = List[Dict[str, str]]

GENERATE = "generate"
"""Replies to chats, sampled per row from that row's seed."""
NEXT_TOKEN = "next_token"
"""Log-probs of given next tokens after a prompt (options that are one token each after their common start)."""
CONTINUATION = "continuation"
"""The log-prob of a given multi-token continuation of a prompt."""
ALL = frozenset({GENERATE, NEXT_TOKEN, CONTINUATION})


@dataclass(frozen=True)
class Capabilities:
    """What an engine offers, declared before it loads anything."""

    can: FrozenSet[str] = ALL
    """Subset of GENERATE, NEXT_TOKEN, CONTINUATION."""
    concurrency: int = 1
    """Chunks a stage may keep in flight at once (a server engine serves several; an in-process one, one)."""
    local_weights: bool = True
    """Runs weights from a local checkpoint, so a model trained from this spec may keep the engine (a served model's
    engine is not inherited: the trained weights are not on the server)."""


@dataclass
class EngineStats:
    """Counters an engine keeps so stages can report throughput."""

    prompts: int = 0
    generated_tokens: int = 0
    prompt_tokens: int = 0
    prefix_tokens_reused: int = 0
    """Prompt tokens served from a cache of the prompt prefix (shared few-shot prefix, server prefix cache)."""
    turn_tokens_reused: int = 0
    """Prompt tokens taken from the previous turn's keys/values instead of encoded again."""
    seconds: float = 0.0


class Engine(Protocol):
    """Generate replies to chats and score options; `stats` accumulates counters."""

    stats: EngineStats

    def generate(self, chats: List[Chat], sampling: Any, seeds: Sequence[int]) -> List[str]:
        """One reply per chat; row i's draws come from `seeds[i]` alone (batch-independent)."""
        ...

    def choice_logprobs(self, prompts: List[Union[str, Chat]], options: List[List[str]]) -> List[List[float]]:
        """Per prompt (raw text, or a chat whose final assistant turn is continued), the log-prob of each option
        string continuing it, summed over the option's tokens."""
        ...

    def has_chat_template(self) -> bool:
        """Whether chats render through the model's own chat template."""
        ...

    def session(self) -> "Engine":
        """A handle whose successive `generate` calls continue each other's chats (turn reuse); close it after."""
        ...

    def describe(self) -> Dict[str, Any]:
        """What produced the bytes: {engine, version, dtype, device} (recorded in each artifact's lineage)."""
        ...

    def close(self) -> None:
        """Free the model (memory, worker processes, connections)."""
        ...


class EngineBase:
    """Lifecycle defaults: a context manager, a session that is the engine itself, close() that does nothing."""

    name = "engine"
    stats: EngineStats
    capabilities = Capabilities()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def session(self):
        """Engines without turn reuse (or with a prefix cache of their own) serve as their own session."""
        return contextlib.nullcontext(self)

    def describe(self) -> Dict[str, Any]:
        """{engine: name}; engines add version, dtype and device."""
        return {"engine": self.name}

    def close(self) -> None:
        """Nothing held."""


def missing(needed: Sequence[str], capabilities: Capabilities) -> List[str]:
    """The needed capabilities an engine lacks."""
    return [n for n in needed if n not in capabilities.can]

