"""A scripted engine with canned outputs, for unit tests of stage logic without torch."""
from __future__ import annotations

import hashlib
from typing import Callable, List, Optional

from cai.engines.base import Chat, EngineStats
from cai.registry import engine


class ScriptedEngine:
    """Replies with `script(chat)`, or a short deterministic echo of the last user turn."""

    def __init__(self, script: Optional[Callable[[Chat], str]] = None):
        self.script = script or _echo
        self.stats = EngineStats()
        self.calls: List[List[Chat]] = []

    def generate(self, chats: List[Chat], sampling, seed: int) -> List[str]:
        """Canned replies; records each call for assertions."""
        self.calls.append(chats)
        replies = [self.script(chat) for chat in chats]
        self.stats.prompts += len(chats)
        self.stats.generated_tokens += sum(len(r.split()) for r in replies)
        return replies


def _echo(chat: Chat) -> str:
    last = chat[-1]["content"]
    tag = hashlib.sha1(repr(chat).encode()).hexdigest()[:6]
    return f"reply {tag} to: {last[:40]}"


@engine("scripted")
def scripted_engine(spec, home) -> ScriptedEngine:
    """Factory used when a model spec says `engine: scripted`."""
    return ScriptedEngine()
