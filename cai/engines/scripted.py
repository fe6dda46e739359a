"""A scripted engine with canned outputs, for unit tests of stage logic without torch."""
from __future__ import annotations

import hashlib
import inspect
from typing import Any, Callable, List, Optional, Sequence, Tuple

from cai.engines.base import ALL, Capabilities, Chat, EngineBase, EngineStats
from cai.registry import engine


class ScriptedEngine(EngineBase):
    """Replies with `script(chat)` (or `script(chat, seed)` when it takes two arguments), or a short deterministic
    echo of the last user turn and its seed; scores options with `chooser(prompt, options) -> log-probs`, or
    deterministic hash-based log-probs."""

    name = "scripted"

    def __init__(self, script: Optional[Callable[..., str]] = None,
                 chooser: Optional[Callable[[Any, List[str]], List[float]]] = None, chat_template: bool = True):
        script = script or _echo
        takes_seed = len(inspect.signature(script).parameters) >= 2
        self.script = script if takes_seed else (lambda chat, seed: script(chat))
        self.chooser = chooser or _hashed_choice
        self.chat_template = chat_template
        self.stats = EngineStats()
        self.calls: List[List[Chat]] = []
        self.seeds: List[List[int]] = []
        self.choice_calls: List[Tuple[List[Any], List[List[str]]]] = []
        self.closed = False

    def generate(self, chats: List[Chat], sampling, seeds: Sequence[int]) -> List[str]:
        """Canned replies; records each call (and its seeds) for assertions."""
        if len(seeds) != len(chats):
            raise ValueError(f"generate: {len(chats)} chats but {len(seeds)} seeds")
        self.calls.append(chats)
        self.seeds.append(list(seeds))
        replies = [self.script(chat, seed) for chat, seed in zip(chats, seeds)]
        self.stats.prompts += len(chats)
        self.stats.generated_tokens += sum(len(r.split()) for r in replies)
        return replies

    def has_chat_template(self) -> bool:
        """As configured (`chat_template=`), so tests cover both prompt formats."""
        return self.chat_template

    def choice_logprobs(self, prompts: List[Any], options: List[List[str]]) -> List[List[float]]:
        """`chooser`'s log-probs per prompt; records each call for assertions."""
        self.choice_calls.append((list(prompts), [list(o) for o in options]))
        self.stats.prompts += len(prompts)
        return [list(self.chooser(p, list(o))) for p, o in zip(prompts, options)]

    def close(self) -> None:
        """Marks the engine closed (tests check stages close what they open)."""
        self.closed = True


def _hashed_choice(prompt: Any, options: List[str]) -> List[float]:
    return [-1.0 - int(hashlib.sha1(repr((prompt, o)).encode()).hexdigest()[:4], 16) / 65535 for o in options]


def _echo(chat: Chat, seed: int = 0) -> str:
    last = chat[-1]["content"]
    tag = hashlib.sha1(repr((chat, seed)).encode()).hexdigest()[:6]
    return f"reply {tag} to: {last[:40]}"


@engine("scripted", capabilities=lambda spec: Capabilities(can=ALL))
def scripted_engine(spec, home) -> ScriptedEngine:
    """Factory used when a model spec says `engine: scripted`."""
    return ScriptedEngine()
