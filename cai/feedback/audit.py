"""The judge audit: known-answer comparisons scored exactly as the real pairs are (same judge, prompt layout,
principles, method, ensemble and A/B debiasing: cai/feedback/labeling.py), so a run can say whether its labels
are better than a coin (Bai et al. 2022, sec. 4.2 and figure 4: feedback quality decides what RL-CAI learns).

Audit rows (`cai://judge_audit`, or any file:// or hf:// source with these fields):
`{id, kind, category, prompt, better, worse}`; `kind` is harmful_vs_safe, helpful_vs_evasive or correct_vs_wrong
(another kind is allowed and judged under every principle). Each item is judged only under the selected
principles whose tags fit its kind (KIND_TAGS), since "which is more helpful?" does not settle a harmful request;
a constitution without tags uses all of them. Items are taken round-robin over kinds and then categories (so
`audit_limit` keeps the spread), and the better answer is shown first for every other item, so a judge that
always answers (A) or always (B) scores 50%.
"""
from __future__ import annotations

from itertools import chain, zip_longest
from typing import Any, Dict, List, Optional, Tuple

from cai import sources
from cai.chunks import resumable_chunks
from cai.constitution import pick_principles
from cai.errors import CaiError
from cai.feedback.labels import wilson_interval
from cai.feedback import labels
from cai.feedback.export import summarize as label_summary
from cai.feedback.labeling import Judging, score_comparisons
from cai.keys import stable_rng

AUDIT_SET = "cai://judge_audit"
AUDIT_LIMIT = 16
"""Items audited at each labeling node by default: the interval is +-0.23 wide at 50%, enough to tell a coin from
a judge; `recipe=judge_audit` scores the whole set."""
KIND_TAGS = {"harmful_vs_safe": ("harmless",), "helpful_vs_evasive": ("helpful",),
             "correct_vs_wrong": ("honest", "helpful")}
FIELDS = ("id", "kind", "prompt", "better", "worse")


def load_items(uri: str, where: str) -> List[Dict[str, str]]:
    """The audit rows of a source, checked; a malformed row is an error naming the source and row."""
    items, seen = [], set()
    for number, row in enumerate(sources.read_rows(sources.parse_uri(uri)), 1):
        if row is None:
            continue
        problem = row_problem(row, seen)
        if problem:
            raise CaiError(f"{where}: {uri} row {number}: {problem} (audit rows hold {', '.join(FIELDS)}, category)")
        seen.add(row["id"])
        items.append({k: str(row.get(k, "")) for k in FIELDS + ("category",)})
    if not items:
        raise CaiError(f"{where}: {uri} holds no audit rows")
    return items


def row_problem(row: Any, seen: set) -> Optional[str]:
    """What is wrong with one audit row, or None."""
    missing = [k for k in FIELDS if not isinstance(row, dict) or not isinstance(row.get(k), str) or not row[k].strip()]
    if missing:
        return f"needs non-empty strings {', '.join(missing)}"
    if row["better"].strip() == row["worse"].strip():
        return "better and worse are the same text"
    return f"id {row['id']!r} repeats an earlier row" if row["id"] in seen else None


def spread(items: List[dict]) -> List[dict]:
    """Items round-robin over kinds, each kind's round-robin over its categories (a prefix keeps the spread)."""
    def round_robin(groups: Dict[str, List[dict]]) -> List[dict]:
        return [i for i in chain.from_iterable(zip_longest(*groups.values())) if i is not None]

    by_kind: Dict[str, Dict[str, List[dict]]] = {}
    for item in items:
        by_kind.setdefault(item["kind"], {}).setdefault(item["category"], []).append(item)
    return round_robin({kind: round_robin(cats) for kind, cats in by_kind.items()})


def fitting(kind: str, principles: Dict[str, Any]) -> List[str]:
    """The principle ids an item of `kind` is judged under (see the module docstring)."""
    if not any(p.get("tags") for p in principles.values()) or kind not in KIND_TAGS:
        return list(principles)
    return [i for i, p in principles.items() if set(p.get("tags") or ()) & set(KIND_TAGS[kind])]


def comparisons(items: List[dict], principles: Dict[str, Any], limit: int) -> Tuple[List[dict], Dict[str, int]]:
    """Up to `limit` audit comparisons (better answer first for every other one) and the items skipped per kind
    because no selected principle fits it."""
    out, skipped = [], {}
    for item in spread(items):
        ids = fitting(item["kind"], principles)
        if not ids:
            skipped[item["kind"]] = skipped.get(item["kind"], 0) + 1
            continue
        if limit and len(out) >= limit:
            continue
        better = len(out) % 2
        responses = [item["worse"], item["better"]] if better else [item["better"], item["worse"]]
        out.append({"id": f"audit:{item['id']}", "prompt": [{"role": "user", "content": item["prompt"]}],
                    "responses": responses, "better": better, "kind": item["kind"], "category": item["category"],
                    "source": "judge_audit", "principles": ids})
    return out, skipped


def audit_row(comparison: dict, record: dict) -> dict:
    """A labeled audit comparison with its known answer: P(better), and right (1), wrong (0) or a tie (0.5)."""
    chose_better = record["chosen"] == comparison["responses"][comparison["better"]]
    p_better = record["p_chosen_unclamped"] if chose_better else 1.0 - record["p_chosen_unclamped"]
    correct = 0.5 if p_better == 0.5 else float(p_better > 0.5)
    return {**record, "kind": comparison["kind"], "better": comparison["better"], "p_better": p_better,
            "correct": correct}


def run(ctx: Any, engine: Any, principles: Dict[str, Any], judging: Judging, ensemble: int, uri: str,
        limit: int, where: str) -> Dict[str, Any]:
    """Score the audit into workdir/audit.jsonl (resumable) and return its summary (metrics.json `audit`)."""
    todo, skipped = comparisons(load_items(uri, where), principles, limit)
    if not todo:
        return {"items": 0, "set": uri, "skipped": skipped}

    def score(chunk: List[dict]) -> List[dict]:
        picked = [pick_principles({i: principles[i] for i in c["principles"]}, ensemble,
                                  stable_rng(ctx.seed, c["id"], "principles")) for c in chunk]
        records = score_comparisons(chunk, picked, principles, ctx.context, judging, engine, ctx.seed)
        return [audit_row(c, r) for c, r in zip(chunk, records)]

    rows, rates = resumable_chunks(ctx, todo, engine, score, "audit comparisons", "audit.jsonl")
    return {**summarize(rows), "set": uri, "skipped": skipped, "method": judging.method,
            "debias": judging.debias, "ensemble": ensemble, "wall_s": rates.get("wall_s")}


def summarize(rows: List[dict]) -> Dict[str, Any]:
    """Known-answer accuracy with its 95% Wilson interval, order agreement, position bias and calibration, overall
    and per kind."""
    def accuracy(group: List[dict]) -> Dict[str, Any]:
        right = sum(r["correct"] for r in group)
        low, high = wilson_interval(right, len(group))
        return {"items": len(group), "accuracy": right / len(group), "low": low, "high": high}

    label = label_summary(rows)
    confidence = [max(r["p_better"], 1.0 - r["p_better"]) for r in rows]
    table = labels.reliability(confidence, [r["p_better"] > 0.5 for r in rows], bins=10)
    kinds = sorted({r["kind"] for r in rows})
    return {**accuracy(rows), "order_agreement": label["order_agreement"], "position_bias": label["position_bias"],
            "mean_p_better": labels.mean([r["p_better"] for r in rows]), "ties": sum(r["correct"] == 0.5 for r in rows),
            "ece": labels.expected_calibration_error(table), "reliability": table,
            "by_kind": {k: accuracy([r for r in rows if r["kind"] == k]) for k in kinds}}
