"""A scripted engine with canned outputs, for unit tests of stage logic without torch."""
from __future__ import annotations

import hashlib
from typing import Any, Callable, List, Optional, Tuple

from cai.engines.base import Chat, EngineStats
from cai.registry import engine


class ScriptedEngine:
    """Replies with `script(chat)`, or a short deterministic echo of the last user turn; scores options with
    `chooser(prompt, options) -> log-probs`, or deterministic hash-based log-probs."""

    def __init__(self, script: Optional[Callable[[Chat], str]] = None,
                 chooser: Optional[Callable[[Any, List[str]], List[float]]] = None, chat_template: bool = True):
        self.script = script or _echo
        self.chooser = chooser or _hashed_choice
        self.chat_template = chat_template
        self.stats = EngineStats()
        self.calls: List[List[Chat]] = []
        self.choice_calls: List[Tuple[List[Any], List[List[str]]]] = []

    def generate(self, chats: List[Chat], sampling, seed: int) -> List[str]:
        """Canned replies; records each call for assertions."""
        self.calls.append(chats)
        replies = [self.script(chat) for chat in chats]
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


def _hashed_choice(prompt: Any, options: List[str]) -> List[float]:
    return [-1.0 - int(hashlib.sha1(repr((prompt, o)).encode()).hexdigest()[:4], 16) / 65535 for o in options]


def _echo(chat: Chat) -> str:
    last = chat[-1]["content"]
    tag = hashlib.sha1(repr(chat).encode()).hexdigest()[:6]
    return f"reply {tag} to: {last[:40]}"


@engine("scripted")
def scripted_engine(spec, home) -> ScriptedEngine:
    """Factory used when a model spec says `engine: scripted`."""
    return ScriptedEngine()
