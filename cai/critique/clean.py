"""Clean model chatter off critiques and revisions, and flag the ones that came back empty."""
from __future__ import annotations

import re
from typing import List, Tuple

# Lead-ins small chat models put before the actual revision ("Sure, here is a revised response:").
_LEAD_IN = re.compile(
    r"^\s*(?:(?:sure|certainly|okay|ok|of course|absolutely)[,!.]?\s*)?"
    r"(?:(?:here(?:'s| is)|below is|this is)\s+(?:a|an|the|my)?\s*"
    r"(?:revised|rewritten|updated|improved|new|edited)\s+(?:version|response|answer|reply)"
    r"(?:\s+(?:of|to)\s+(?:the|my)\s+(?:assistant(?:'s)?\s+)?(?:response|answer|reply))?\s*[:.]\s*)?"
    r"(?:(?:revised|rewritten|revision|new)\s*(?:response|answer|reply)?\s*:\s*)?",
    re.IGNORECASE,
)
_CRITIQUE_LEAD = re.compile(r"^\s*(?:critique\s*:\s*)", re.IGNORECASE)


def clean_revision(text: str) -> str:
    """Strip lead-ins and wrapping quotes from a revision."""
    cleaned = _LEAD_IN.sub("", text.strip(), count=1).strip()
    if len(cleaned) >= 2 and cleaned[0] == cleaned[-1] and cleaned[0] in "\"'":
        cleaned = cleaned[1:-1].strip()
    return cleaned


def clean_critique(text: str) -> str:
    """Strip a `Critique:` label from a critique."""
    return _CRITIQUE_LEAD.sub("", text.strip(), count=1).strip()


def pick_final(initial: str, revisions: List[str]) -> Tuple[str, List[str]]:
    """The last non-empty revision (else the initial answer) and the flags raised on the way."""
    flags, final = [], initial
    for number, revision in enumerate(revisions, 1):
        if not revision:
            flags.append(f"empty_revision_{number}")
        else:
            final = revision
    if not initial.strip():
        flags.append("empty_initial")
    return final, flags
