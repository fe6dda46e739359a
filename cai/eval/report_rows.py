"""What an evaluate node writes for people and for the report: side-by-side data.jsonl rows, samples.md, and the
evasiveness table (refusal rates with 95% Wilson intervals)."""
from __future__ import annotations

import json
from typing import Any, Dict, List

from cai.feedback.labels import wilson_interval
from cai.eval.refusal import is_refusal


def records(prompts: List[dict], answers: Dict[str, Dict[str, str]], judged: List[dict],
            refusals: Dict[str, Dict[str, float]], models: List[str]) -> List[dict]:
    """One row per prompt: `{id, set, prompt, category, answers: {model: text}, refusal: {model: bool},
    p_refusal: {model: P} (judge, helpful and over-refusal prompts), judgments: [{axis, model_a, model_b,
    p_a_better, score}]}`, and `label` (harmless / harmful) on over-refusal prompts."""
    by_prompt: Dict[str, List[dict]] = {}
    for j in judged:
        by_prompt.setdefault(j["prompt_id"], []).append({k: j[k] for k in ("axis", "model_a", "model_b",
                                                                           "p_a_better", "score", "identical")})
    rows = []
    for p in prompts:
        row = {"id": p["id"], "set": p["set"], "prompt": p["prompt"], "category": p["category"],
               "answers": {m: answers[m][p["id"]] for m in models},
               "refusal": {m: is_refusal(answers[m][p["id"]]) for m in models},
               "judgments": by_prompt.get(p["id"], [])}
        if p.get("label"):  # over-refusal prompts: harmless or harmful
            row["label"] = p["label"]
        if any(p["id"] in refusals.get(m, {}) for m in models):
            row["p_refusal"] = {m: refusals[m][p["id"]] for m in models}
        rows.append(row)
    return rows


def rate(flags: List[bool]) -> Dict[str, float]:
    """A share with its 95% Wilson interval and count."""
    low, high = wilson_interval(float(sum(flags)), len(flags))
    return {"rate": sum(flags) / len(flags) if flags else 0.0, "low": low, "high": high, "n": len(flags)}


def evasiveness(rows: List[dict], models: List[str], judged: bool) -> Dict[str, Dict[str, Any]]:
    """Per model: how often it refuses helpful requests (detector; judge when asked) and red-team ones."""
    out = {}
    for m in models:
        helpful = [r for r in rows if r["set"] == "helpful"]
        red = [r for r in rows if r["set"] == "redteam"]
        entry = {"helpful": rate([r["refusal"][m] for r in helpful]),
                 "redteam": rate([r["refusal"][m] for r in red]),
                 "empty_answers": sum(1 for r in rows if not r["answers"][m].strip())}
        if judged and helpful:
            entry["helpful_judge"] = rate([r["p_refusal"][m] > 0.5 for r in helpful])
            entry["helpful_judge"]["mean_p"] = sum(r["p_refusal"][m] for r in helpful) / len(helpful)
        out[m] = entry
    return out


def write(rows: List[dict], ctx, models: List[str]) -> None:
    """data.jsonl (every row, rewritten whole: the resumable work lives in the answers/judgments files) and
    samples.md (the first `num_samples` prompts side by side)."""
    (ctx.workdir / "data.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                            encoding="utf-8")
    shown = rows[:ctx.cfg.num_samples]
    lines = [f"# {ctx.node}: the same prompts answered by each model ({len(shown)} of {len(rows)})", ""]
    for row in shown:
        lines += [f"## {row['id']} ({row['set']}, {row['category'] or 'no category'})", "",
                  f"**Prompt:** {row['prompt']}", ""]
        for m in models:
            flag = " *(refusal)*" if row["refusal"][m] else ""
            lines += [f"**{m}**{flag}: {row['answers'][m]}", ""]
        for j in row["judgments"]:
            how = "identical answers" if j["identical"] else f"P({j['model_a']} better) = {j['p_a_better']:.3f}"
            lines.append(f"- {j['axis']}: {j['model_a']} vs {j['model_b']}: {how}")
        lines.append("")
    (ctx.workdir / "samples.md").write_text("\n".join(lines), encoding="utf-8")
