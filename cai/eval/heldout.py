"""Held-out evaluation prompts: every prompt an ancestor of the compared models saw is excluded.

The store knows what each stage saw: an artifact's lineage.json names its inputs (upstream artifact folders, source
URIs, model roles), and a data stage's data.jsonl holds the prompts it used. Walking the lineage from each compared
model collects those prompts:

- an artifact with data.jsonl (critique_revision, answer_prompts, sample_pairs, label_preferences, ...) saw the
  prompts its records hold: a `prompt` string, or the user turns of `prompt` / `messages` / `chosen` / `rejected`
  conversations;
- an artifact without one (a trained model) saw every row of the source URIs it read directly (an SFT mixture over a
  file:// or hf:// dataset), so all of their prompts count;
- model roles (a hub or local model) carry no lineage: what they were pretrained on is unknown here.

Prompts are matched by text, not id: stages rewrite ids (`s0-rt-0001` in sample_pairs, `...:0-1` in
label_preferences) and two sources may reuse an id for different prompts, while the same text is the same prompt.
Text is compared whitespace-collapsed and case-folded, on its first MATCH_CHARS characters (stages truncate long
prompts at their own `max_prompt_chars`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, List, Set, Tuple

from cai import sources
from cai.errors import CaiError
from cai.chunks import read_jsonl
from cai.eval.lineage import walk

MATCH_CHARS = 1000
CONVERSATION_KEYS = ("prompt", "messages", "chosen", "rejected", "conversation")


def match_key(text: str) -> str:
    """What two prompts must share to count as the same prompt."""
    return " ".join(text.split()).casefold()[:MATCH_CHARS]


def user_turns(value: Any) -> List[str]:
    """The user turns' text of a chat (a list of {role, content}); [] for anything else."""
    if not isinstance(value, list):
        return []
    return [m["content"] for m in value if isinstance(m, dict) and m.get("role") == "user"
            and isinstance(m.get("content"), str)]


def row_prompts(row: Any, field: str = "prompt", hh: bool = False) -> List[str]:
    """Every prompt text a data row holds: its `field` string (hh-rlhf transcripts cut to the first Human turn),
    and the user turns of its conversation columns."""
    if isinstance(row, str):
        return [row]
    if not isinstance(row, dict):
        return []
    found = [sources.first_human_turn(row[field]) if hh else row[field]] if isinstance(row.get(field), str) else []
    for key in dict.fromkeys((field,) + CONVERSATION_KEYS):
        found += user_turns(row.get(key))
    return found


def source_prompts(uri: str) -> List[str]:
    """Every prompt of a source URI (as lineage.json records it; older records append `#sha256=...`)."""
    src = sources.parse_uri(uri.split("#sha256=", 1)[0])
    field, hh = src.options.get("field", "prompt"), src.options.get("format") == "hh"
    return [text for row in sources.read_rows(src) for text in row_prompts(row, field, hh)]


def seen_prompts(artifacts: Iterable[Path]) -> Tuple[Set[str], List[str]]:
    """(match keys of every prompt the artifacts and their ancestors saw, the artifact folders visited)."""
    seen: Set[str] = set()
    visited: List[str] = []
    for path, lineage in walk(artifacts):
        visited.append(str(path))
        rows = read_jsonl(path / "data.jsonl")
        seen.update(match_key(t) for row in rows for t in row_prompts(row))
        for inp in (lineage.get("inputs") or {}).values():
            if isinstance(inp, dict) and inp.get("source") and not inp.get("path") and not rows:
                seen.update(match_key(t) for t in source_prompts(str(inp["source"])))  # read whole, no records
    return seen, visited


def held_out(uri: str, seen: Set[str], limit: int, seed: int, max_chars: int, where: str) -> Tuple[List[dict], dict]:
    """Up to `limit` prompts of `uri` (seeded shuffle) that no ancestor saw, and counts: rows, excluded, used."""
    prompts, stats = sources.load_prompts(uri, None, True, seed, max_chars)
    kept = [p for p in prompts if match_key(p["prompt"]) not in seen]
    if not kept:
        raise CaiError(f"{where}: all {len(prompts)} prompts of {uri!r} were seen by the compared models' "
                       f"ancestors; give held-out prompts (a file:// or hf:// URI)")
    used = kept[:limit]
    counts = {"rows": stats["rows"], "usable": len(prompts), "excluded_seen": len(prompts) - len(kept),
              "held_out": len(kept), "used": len(used)}
    return used, counts
