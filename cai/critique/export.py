"""Export SL-CAI records as a Hugging Face dataset with the columns of HuggingFaceH4/cai-conversation-harmless."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import yaml


def hf_row(record: Dict[str, Any]) -> Dict[str, Any]:
    """One record in the cai-conversation-harmless layout, plus principle ids (added, never substituted)."""
    last = record["rounds"][-1]
    user = {"role": "user", "content": record["prompt"]}
    revised = [user, {"role": "assistant", "content": record["final"]}]
    return {
        "init_prompt": record["prompt"], "init_response": record["initial"],
        "critic_prompt": last["critique_request"], "critic_response": last["critique"],
        "revision_prompt": last["revision_request"], "revision_response": last["revision"],
        "prompt": record["prompt"], "messages": revised, "chosen": revised,
        "rejected": [user, {"role": "assistant", "content": record["initial"]}],
        "id": record["id"], "category": record.get("category", ""),
        "principle_ids": [r["principle_id"] for r in record["rounds"]], "flags": record["flags"],
    }


def export_hf(records: List[Dict[str, Any]], workdir: Path, context: Dict[str, Any]) -> None:
    """Write hf/ (save_to_disk), data.parquet, and the constitution the data was made with."""
    from datasets import Dataset

    dataset = Dataset.from_list([hf_row(r) for r in records])
    dataset.save_to_disk(str(workdir / "hf"))
    dataset.to_parquet(str(workdir / "data.parquet"))
    (workdir / "constitution.yaml").write_text(
        "# The constitution parts this dataset was generated with (traceability of its values)\n"
        + yaml.safe_dump(context, sort_keys=False, allow_unicode=True, width=100))


def write_samples(records: List[Dict[str, Any]], path: Path, count: int) -> None:
    """samples.md: prompt -> answer -> critique -> revision transcripts to read by eye."""
    lines = [f"# SL-CAI samples ({min(count, len(records))} of {len(records)})", ""]
    for record in records[:count]:
        lines += [f"## {record['id']} {record.get('category', '')}".rstrip(), "",
                  f"**Prompt:** {record['prompt']}", "", f"**Initial answer:** {record['initial']}", ""]
        for number, r in enumerate(record["rounds"], 1):
            lines += [f"**Round {number} principle:** `{r['principle_id']}`", "",
                      f"**Critique request:** {r['critique_request']}", "", f"**Critique:** {r['critique']}", "",
                      f"**Revision:** {r['revision']}", ""]
        if record["flags"]:
            lines += [f"**Flags:** {', '.join(record['flags'])}", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
