"""Training examples from source rows, in TRL's conversational formats: SFT conversations and DPO preference pairs.

Every example is reduced to `{role, content}` messages so rows from different sources share one Arrow schema.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

Messages = List[Dict[str, str]]


def messages(value: Any) -> Optional[Messages]:
    """A chat as `[{role, content}]`, or None when the value is not one."""
    if not isinstance(value, list) or not value:
        return None
    out = []
    for m in value:
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            return None
        out.append({"role": m["role"], "content": m["content"]})
    return out


def sft_example(value: Any, fmt: str, system_prompt: Optional[str] = None) -> Optional[Dict[str, Messages]]:
    """A conversation ending in an assistant turn, as `{prompt, completion}` (loss on the final reply) or
    `{messages}`; None when unusable. A spec's system prompt is prepended, as the engine does at inference."""
    chat = messages(value)
    if not chat or chat[-1]["role"] != "assistant" or len(chat) < 2:
        return None
    if system_prompt and chat[0]["role"] != "system":
        chat = [{"role": "system", "content": system_prompt}] + chat
    if fmt == "messages":
        return {"messages": chat}
    return {"prompt": chat[:-1], "completion": chat[-1:]}


def with_system(chat: Messages, system_prompt: Optional[str]) -> Messages:
    """The chat with a spec's system prompt first (as the engine adds it at inference), unless it has one."""
    if system_prompt and (not chat or chat[0]["role"] != "system"):
        return [{"role": "system", "content": system_prompt}] + chat
    return chat


def _turns(value: Any, role: str) -> Optional[Messages]:
    if isinstance(value, str):
        return [{"role": role, "content": value}] if value.strip() else None
    return messages(value)


def preference_pair(row: Any) -> Optional[Dict[str, Any]]:
    """`{prompt, chosen, rejected, p_chosen}` from a row with prompt / chosen / rejected columns, as text or as
    messages; chosen and rejected that repeat the prompt (the implicit-prompt layout of SL-CAI conversations and
    UltraFeedback) keep only what follows it. None when unusable."""
    if not isinstance(row, dict):
        return None
    chosen, rejected = _turns(row.get("chosen"), "assistant"), _turns(row.get("rejected"), "assistant")
    if not chosen or not rejected:
        return None
    prompt = _turns(row.get("prompt"), "user")
    if prompt is None:  # implicit prompt only: everything before the last turn
        prompt, chosen, rejected = chosen[:-1], chosen[-1:], rejected[-1:]
    chosen, rejected = _after(chosen, prompt), _after(rejected, prompt)
    if not prompt or not chosen or not rejected:
        return None
    p = row.get("p_chosen")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected,
            "p_chosen": float(p) if isinstance(p, (int, float)) else None}


def _after(turns: Messages, prompt: Messages) -> Messages:
    return turns[len(prompt):] if turns[:len(prompt)] == prompt else turns
