"""Preference labels out: TRL's conversational preference dataset (hf/), samples.md and the label metrics."""
from __future__ import annotations

from typing import Any, Dict, List

from cai.feedback import labels


def hf_row(record: Dict[str, Any]) -> Dict[str, Any]:
    """TRL's conversational preference format (prompt messages, chosen / rejected assistant turns) plus the soft
    label `p_chosen` and provenance columns (added, never substituted)."""
    return {"prompt": record["prompt"],
            "chosen": [{"role": "assistant", "content": record["chosen"]}],
            "rejected": [{"role": "assistant", "content": record["rejected"]}],
            "p_chosen": record["p_chosen"], "id": record["id"], "principle_ids": record["principle_ids"],
            "method": record["method"], "category": record.get("category", ""), "source": record.get("source", "")}


def export(records: List[Dict[str, Any]], ctx) -> None:
    """hf/ (save_to_disk) and samples.md."""
    from datasets import Dataset

    Dataset.from_list([hf_row(r) for r in records]).save_to_disk(str(ctx.workdir / "hf"))
    write_samples(records, ctx.workdir / "samples.md", ctx.cfg.num_samples, ctx.context.get("principles", {}))


def write_samples(records: List[Dict[str, Any]], path, count: int, principles: Dict[str, Any]) -> None:
    """samples.md: prompt, chosen and rejected with their soft label, and what each principle/order scored."""
    lines = [f"# Preference samples ({min(count, len(records))} of {len(records)})", ""]
    for record in records[:count]:
        lines += [f"## {record['id']}  p_chosen={record['p_chosen']:.3f}", "",
                  f"**Prompt:** {record['prompt'][-1]['content']}", "", f"**Chosen:** {record['chosen']}", "",
                  f"**Rejected:** {record['rejected']}", ""]
        for order in record["orders"]:
            text = principles.get(order["principle_id"], {}).get("text", "")
            lines.append(f"- `{order['principle_id']}` {order['order']}: P(A)={order['p_a']:.3f}  {text[:80]}")
            if order.get("reasoning"):
                lines.append(f"  - reasoning: {order['reasoning'][:300]}")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def summarize(records: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Label distribution, mean confidence, agreement between A/B orders, position bias, fraction clamped."""
    p_chosen = [r["p_chosen"] for r in records]
    p_a = [o["p_a"] for r in records for o in r["orders"]]
    swapped_pairs = []
    for record in records:
        orders = record["orders"]
        for ab, ba in zip(orders[::2], orders[1::2]):
            if ab["order"] == "AB" and ba["order"] == "BA" and ab["principle_id"] == ba["principle_id"]:
                swapped_pairs.append((ab["p_a"], 1.0 - ba["p_a"]))  # both as P(first response better)
    return {"comparisons": len(records), "scored_orders": len(p_a),
            "p_chosen_histogram": labels.histogram(p_chosen), "mean_confidence": labels.mean(p_chosen),
            "mean_confidence_unclamped": labels.mean([r["p_chosen_unclamped"] for r in records]),
            "order_agreement": labels.order_agreement(swapped_pairs) if swapped_pairs else None,
            "position_bias": labels.position_bias(p_a),
            "fraction_clamped": labels.mean([float(r["clamped"]) for r in records])}
