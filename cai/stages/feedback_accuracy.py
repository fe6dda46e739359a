"""How good a feedback model is (Bai et al. 2022, section 4.2, figure 4): multiple-choice accuracy and calibration
on HHH-format evaluations, rows `{prompt, corrects: [...], incorrects: [...]}` whose prompt already holds the
question. Each row's candidate answers are its options, scored after the prompt by the same scorer as
label_preferences; softmax over the options; a row is right when the most probable option is a correct one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from cai import sources
from cai.chunks import append_jsonl, resume_jsonl, write_jsonl
from cai.engines.base import CONTINUATION
from cai.feedback import labels, prompt
from cai.feedback.scorer import Choice, check_choice_config, judge_needs, score_choices
from cai.keys import example_seeds
from cai.progress import StageProgress
from cai.errors import CaiError
from cai.registry import stage
from cai.schema import Sampling
from cai.stage_api import StageConfig, StageContext, log


@dataclass
class FeedbackAccuracyInputs:
    evals: Optional[str] = None
    """HHH-format JSONL as a source URI, e.g. file://../shared/evals/ConstitutionalHarmlessnessPaper/
    438HHHEvaluations.jsonl (a relative file:// path resolves against the current directory)."""
    model: str = "models.judge"
    """The model under evaluation: a model role, or a node producing a model."""


@dataclass
class FeedbackAccuracyConfig(StageConfig):
    kind: str = "feedback_accuracy"
    inputs: FeedbackAccuracyInputs = field(default_factory=FeedbackAccuracyInputs)
    method: str = "logprob"
    """logprob: the options' probabilities after the prompt; cot: the model reasons first, then they are scored."""
    format: str = "raw"
    """raw: the rows' prompts verbatim (they hold the paper's layout); chat: the question as the user turn and
    "The answer is:" continued in the assistant turn; auto: chat when the model has a chat template."""
    sampling: Sampling = field(default_factory=Sampling)
    """Decoding of the CoT reasoning."""
    limit: Optional[int] = None
    """Evaluate only the first N rows."""
    chunk_size: int = 128
    """Rows per scoring call; each finished chunk is appended to disk, so a killed run resumes."""


def check(node_cfg, where: str) -> None:
    """Plan-time: a method and format we know, and an eval file given."""
    check_choice_config(node_cfg, where)
    if not node_cfg.inputs.evals:
        raise CaiError(f"{where}.inputs.evals: give the HHH-format JSONL, e.g. file://path/to/evals.jsonl")


@stage("feedback_accuracy", schema=FeedbackAccuracyConfig, version=2, produces="eval",
       consumes={"evals": ("data",), "model": ("model",)}, check=check,
       needs=lambda node_cfg: {"model": judge_needs(node_cfg.method, CONTINUATION)})
def feedback_accuracy(ctx: StageContext) -> Dict[str, Any]:
    """Per-row scores into data.jsonl (resuming); accuracy, mean P(correct), ECE and a reliability table."""
    cfg = ctx.cfg
    rows = load_rows(cfg.inputs.evals)
    rows = rows[:cfg.limit] if cfg.limit else rows
    out = ctx.workdir / "data.jsonl"
    done = {r["id"] for r in resume_jsonl(out)}
    # rows sorted by prompt text: rows about one conversation share a long token prefix, computed once per call
    todo = sorted((r for r in rows if r["id"] not in done), key=lambda r: r["prompt"])
    if done:
        log.info("%s: resuming, %d of %d rows already scored", ctx.node, len(done), len(rows))
    with ctx.engine("model") as engine, StageProgress(ctx.node, total=len(rows), done=len(done),
                                                      engine=engine) as progress:
        for start in range(0, len(todo), cfg.chunk_size):
            chunk = todo[start:start + cfg.chunk_size]
            seeds = example_seeds(ctx.seed, [r["id"] for r in chunk], "cot")
            probs, reasons = score_choices(engine, [to_choice(r) for r in chunk], cfg.method, cfg.format,
                                           cfg.sampling, seeds)
            append_jsonl(out, [result(r, p, why) for r, p, why in zip(chunk, probs, reasons)])
            progress.advance(len(chunk))
    by_id = {r["id"]: r for r in resume_jsonl(out)}
    results = [by_id[r["id"]] for r in rows]
    write_jsonl(out, results)  # row order, whatever order the prompt-sorted chunks were scored in
    write_samples(results, rows, ctx)
    rates = progress.metrics()
    return {**summarize(results), "method": cfg.method, "format": cfg.format,
            "comparisons_per_s": rates["prompts_per_s"], "scored_prompt_tokens": engine.stats.prompt_tokens,
            **rates}


def load_rows(uri: str) -> List[Dict[str, Any]]:
    """The eval rows, checked; a malformed row is an error naming the file and row number."""
    src = sources.parse_uri(uri)
    where = uri if src.scheme == "hf" else str(sources.local_path(src))
    rows = []
    for number, row in enumerate(sources.read_rows(src), 1):
        if row is None:  # a blank line
            continue
        problem = row_problem(row)
        if problem:
            raise CaiError(f"{where}: row {number}: {problem}")
        rows.append({"id": f"row{number}", "row": number, "prompt": row["prompt"], "corrects": list(row["corrects"]),
                     "incorrects": list(row["incorrects"])})
    if not rows:
        raise CaiError(f"{where}: no evaluation rows")
    return rows


def row_problem(row: Any) -> Optional[str]:
    """What is wrong with one row, or None."""
    if not isinstance(row, dict):
        return "expected a JSON object with prompt, corrects and incorrects"
    if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
        return "`prompt` must be a non-empty string"
    for key in ("corrects", "incorrects"):
        value = row.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            return f"`{key}` must be a non-empty list of non-empty strings, got {value!r}"
    if len(set(row["corrects"] + row["incorrects"])) != len(row["corrects"]) + len(row["incorrects"]):
        return "an answer appears twice among corrects and incorrects"
    return None


def to_choice(row: Dict[str, Any]) -> Choice:
    """The row as a Choice: its prompt verbatim (raw), or split into a question and a continued answer cue."""
    question, cue = prompt.split_answer(row["prompt"])
    chat = [{"role": "user", "content": question}, {"role": "assistant", "content": cue}]
    return Choice(raw=row["prompt"], chat=chat, options=row["corrects"] + row["incorrects"], cue=cue,
                  cot=[{"role": "user", "content": f"{question}\n\n{prompt.COT_REQUEST}"}])


def result(row: Dict[str, Any], probs: List[float], reasoning: str) -> Dict[str, Any]:
    """One row's outcome: option probabilities, P(correct), the prediction and whether it is right."""
    n_correct = len(row["corrects"])
    best = max(range(len(probs)), key=lambda i: probs[i])
    out = {"id": row["id"], "row": row["row"], "options": row["corrects"] + row["incorrects"], "probs": probs,
           "p_correct": sum(probs[:n_correct]), "predicted": best, "correct": best < n_correct,
           "confidence": probs[best]}
    return {**out, "reasoning": reasoning} if reasoning else out


def summarize(results: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Accuracy, mean probability of the correct answer, ECE and the 10-bin reliability table."""
    table = labels.reliability([r["confidence"] for r in results], [r["correct"] for r in results], bins=10)
    return {"rows": len(results), "accuracy": labels.mean([float(r["correct"]) for r in results]),
            "mean_p_correct": labels.mean([r["p_correct"] for r in results]),
            "ece": labels.expected_calibration_error(table), "reliability": table}


def write_samples(results: List[Dict[str, Any]], rows: List[Dict[str, Any]], ctx: StageContext) -> None:
    """samples.md: the end of each prompt, its options' probabilities, and whether the model was right."""
    lines = [f"# {ctx.node}: evaluation samples ({min(ctx.cfg.num_samples, len(rows))} of {len(rows)})", ""]
    for res, row in list(zip(results, rows))[:ctx.cfg.num_samples]:
        lines += [f"## row {row['row']}: {'right' if res['correct'] else 'wrong'}", "",
                  "```", row["prompt"][-400:].strip(), "```", ""]
        lines += [f"- `{o!r}` p={p:.3f}{' (correct)' if i < len(row['corrects']) else ''}"
                  for i, (o, p) in enumerate(zip(res["options"], res["probs"]))]
        lines += ([f"- reasoning: {res['reasoning'][:300]}"] if res.get("reasoning") else []) + [""]
    (ctx.workdir / "samples.md").write_text("\n".join(lines), encoding="utf-8")
