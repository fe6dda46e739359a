"""Render chats for a model: its chat template when it has one, else the paper's Human:/Assistant: transcript."""
from __future__ import annotations

from typing import Any, Dict, List, Optional

Chat = List[Dict[str, str]]
_SPEAKERS = {"user": "Human", "assistant": "Assistant", "system": "System"}


def transcript(chat: Chat, add_generation_prompt: bool = True) -> str:
    """A plain `Human: ... Assistant: ...` transcript, as base models saw it in the paper."""
    text = "".join(f"\n\n{_SPEAKERS.get(m['role'], m['role'].title())}: {m['content']}" for m in chat)
    return text + ("\n\nAssistant:" if add_generation_prompt else "")


def render_chat(chat: Chat, tokenizer: Optional[Any] = None, add_generation_prompt: bool = True) -> str:
    """The exact prompt text the model sees for `chat`."""
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=add_generation_prompt)
    return transcript(chat, add_generation_prompt)


def with_system(chat: Chat, system_prompt: Optional[str]) -> Chat:
    """The chat with the spec's system prompt first, unless it has a system turn of its own."""
    if system_prompt and (not chat or chat[0]["role"] != "system"):
        return [{"role": "system", "content": system_prompt}] + list(chat)
    return list(chat)


def render_prompt(chat: Chat, tokenizer: Optional[Any] = None, system_prompt: Optional[str] = None) -> str:
    """The exact text a model is prompted with for `chat` (the spec's system prompt first), ending on the
    generation prompt: every engine that renders locally renders this way."""
    return render_chat(with_system(chat, system_prompt), tokenizer)


def render_continuation(chat: Chat, tokenizer: Optional[Any] = None, system_prompt: Optional[str] = None) -> str:
    """The exact text a judge scores for `chat`: a final assistant turn is continued, not closed."""
    chat = with_system(chat, system_prompt)
    cont = chat[-1]["role"] == "assistant"
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(chat, tokenize=False, continue_final_message=cont,
                                             add_generation_prompt=not cont)
    return transcript(chat, add_generation_prompt=not cont)
