"""Multiple-choice scoring through an engine, shared by label_preferences and feedback_accuracy (one scorer).

A `Choice` holds one question in every form a judge may see: raw text (base models), a chat continued from the
answer cue (chat models), and the chat the judge reasons in (CoT). `score_choices` returns normalized option
probabilities; how an engine computes option log-probs is its own business (cai/engines/).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple, Union

from cai.engines.base import GENERATE, NEXT_TOKEN
from cai.feedback import prompt
from cai.feedback.labels import softmax
from cai.feedback.prompt import ANSWER_CUE, Chat, after_reasoning, clean_reasoning
from cai.errors import CaiError

FORMATS = ("auto", "raw", "chat")
METHODS = ("logprob", "cot")


@dataclass
class Choice:
    """One multiple-choice query and its option strings."""

    raw: str
    """The whole plain-text prompt, ending on the answer cue."""
    chat: Chat
    """The question as a chat whose last (assistant) turn is the answer cue, continued."""
    options: List[str]
    cot: Optional[Chat] = None
    """The chat the judge writes its reasoning in (method=cot)."""
    cue: str = ANSWER_CUE
    """What follows the reasoning before the options are scored."""


def pair_choices(conversation: Sequence[dict], principle: str, first: str, second: str, context: dict,
                 swapped: Sequence[bool] = (False, True)) -> List[Choice]:
    """One Choice per order of a response pair under one principle (`swapped`: the second response shown as (A)),
    with the few-shot exemplars `context` holds (labeling or CoT, as label_preferences' context records them)."""
    labeling = prompt.labeling_shots(context.get("labeling", {}), context.get("exemplar_principles", {}), principle)
    cot = prompt.cot_shots(context.get("cot", {}), principle)
    choices = []
    for swap in swapped:
        q = prompt.question(conversation, principle, *((second, first) if swap else (first, second)))
        choices.append(Choice(raw=prompt.raw_prompt(q, labeling), chat=prompt.chat_prompt(q, labeling),
                              options=list(prompt.LETTERS), cot=prompt.cot_chat(q, cot)))
    return choices


def use_chat(engine: Any, form: str) -> bool:
    """Whether prompts go through the judge's chat template: `auto` uses it when the model has one."""
    if form == "auto":
        return bool(getattr(engine, "has_chat_template", lambda: False)())
    return form == "chat"


def score_choices(engine: Any, choices: Sequence[Choice], method: str, form: str, sampling: Any,
                  seeds: Sequence[int]) -> Tuple[List[List[float]], List[str]]:
    """(option probabilities, reasoning) per choice. With CoT the judge first reasons (sampled with `sampling`,
    choice i from seeds[i]), then its answer is scored after the reasoning; the chat is rendered as the engine
    renders chats."""
    if method == "cot":
        reasons = [clean_reasoning(t) for t in engine.generate([c.cot for c in choices], sampling, seeds)]
        prompts: List[Union[str, Chat]] = [after_reasoning(c.cot, r, c.cue) for c, r in zip(choices, reasons)]
    else:
        reasons = [""] * len(choices)
        chat = use_chat(engine, form)
        prompts = [c.chat if chat else c.raw for c in choices]
    logprobs = engine.choice_logprobs(prompts, [c.options for c in choices])
    return [softmax(lp) for lp in logprobs], reasons


def judge_needs(method: str, scoring: str = NEXT_TOKEN) -> Tuple[str, ...]:
    """What a judge's engine must offer: option scoring (`scoring`), and generation for CoT reasoning."""
    return (scoring, GENERATE) if method == "cot" else (scoring,)


def check_choice_config(node_cfg: Any, where: str) -> None:
    """Plan-time checks of the fields both feedback stages share."""
    if node_cfg.method not in METHODS:
        raise CaiError(f"{where}.method: {node_cfg.method!r} unknown; available: {', '.join(METHODS)}")
    if node_cfg.format not in FORMATS:
        raise CaiError(f"{where}.format: {node_cfg.format!r} unknown; available: {', '.join(FORMATS)}")
