"""The feedback model's multiple-choice question (Bai et al. 2022, section 4.1) and how it is rendered.

Layout (the paper's, as in its HHH evaluation file):

    Consider the following conversation between a human and an assistant:
    [conversation]
    [principle]
    Options:
    (A) [response A]
    (B) [response B]
    The answer is:

Raw text for base models; for chat models the question is the user turn and the assistant turn is continued from
"The answer is: (", so the next token is the option letter the model itself would write (its own chat format, not
a base-model transcript wrapped in a template). The options are then the bare letters "A" and "B": one token each,
so one forward pass scores both (cai/feedback/forward.py).
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Sequence, Tuple

from cai.constitution.render import transcript

Chat = List[Dict[str, str]]
HEADER = "Consider the following conversation between a human and an assistant:"
ANSWER = "The answer is:"
ANSWER_CUE = ANSWER + " ("
LETTERS = ("A", "B")
COT_REQUEST = "Let's think step by step:"


def question(conversation: Sequence[Mapping[str, str]], principle: str, response_a: str, response_b: str) -> str:
    """The multiple-choice question without its answer cue."""
    chat = [{"role": m["role"], "content": m["content"]} for m in conversation]
    return (f"{HEADER}\n\n{transcript(chat, add_generation_prompt=False).strip()}\n\n{principle.strip()}\n"
            f"Options:\n(A) {response_a.strip()}\n(B) {response_b.strip()}")


def labeling_shots(exemplars: Mapping[str, Any], principles: Mapping[str, str],
                   principle: str) -> List[Tuple[str, str]]:
    """(question, answer letter) per labeling exemplar. The better response alternates between (A) and (B) so the
    exemplars teach no position preference; an exemplar without its own principle id uses the current principle."""
    shots = []
    for number, exemplar in enumerate(exemplars.values()):
        text = principles[exemplar["principle"]] if exemplar.get("principle") else principle
        better, worse = exemplar["better"], exemplar["worse"]
        pair, letter = ((better, worse), "A") if number % 2 == 0 else ((worse, better), "B")
        shots.append((question(exemplar["conversation"], text, *pair), letter))
    return shots


def raw_prompt(text: str, shots: Sequence[Tuple[str, str]] = ()) -> str:
    """The paper's plain-text prompt for base models, few-shot exemplars first, ending on the answer cue."""
    blocks = [f"{q}\n\n{ANSWER_CUE}{letter})" for q, letter in shots]
    return "".join(f"\n\n{block}\n" for block in blocks) + f"\n\n{text}\n\n{ANSWER_CUE}"


def chat_prompt(text: str, shots: Sequence[Tuple[str, str]] = ()) -> Chat:
    """A chat ending on an assistant turn to continue: exemplars as earlier question/answer turns."""
    chat: Chat = []
    for q, letter in shots:
        chat += [{"role": "user", "content": q}, {"role": "assistant", "content": f"{ANSWER_CUE}{letter})"}]
    return chat + [{"role": "user", "content": text}, {"role": "assistant", "content": ANSWER_CUE}]


def cot_shots(exemplars: Mapping[str, Any], principle: str) -> List[Tuple[str, str, str]]:
    """(question, reasoning, answer letter) per CoT exemplar, its `principle_slot` filled with `principle`."""
    shots = []
    for exemplar in exemplars.values():
        line = exemplar.get("principle_slot", "{principle}").replace("{principle}", principle.strip())
        q = question(exemplar["conversation"], line, exemplar["response_a"], exemplar["response_b"])
        shots.append((q, exemplar["reasoning"].strip(), exemplar["answer"]))
    return shots


def cot_chat(text: str, shots: Sequence[Tuple[str, str, str]] = ()) -> Chat:
    """The chat the judge reasons in (section 4.1): the question, then "Let's think step by step:"."""
    chat: Chat = []
    for q, reasoning, letter in shots:
        chat += [{"role": "user", "content": f"{q}\n\n{COT_REQUEST}"},
                 {"role": "assistant", "content": f"{reasoning}\n\n{ANSWER_CUE}{letter})"}]
    return chat + [{"role": "user", "content": f"{text}\n\n{COT_REQUEST}"}]


def after_reasoning(chat: Chat, reasoning: str, cue: str = ANSWER_CUE) -> Chat:
    """The CoT chat with the judge's reasoning as its answer, continued from the answer cue to score the options."""
    body = f"{reasoning}\n\n{cue}" if reasoning else cue
    return chat + [{"role": "assistant", "content": body}]


def clean_reasoning(text: str) -> str:
    """Reasoning up to the judge's own answer (scored separately) or a next transcript turn (base models)."""
    text = re.split(r"\n\s*(?:Human|H|User):|The answer is", text, maxsplit=1)[0]
    return text.strip()


def split_answer(prompt: str) -> Tuple[str, str]:
    """(question, trailing answer cue) of a raw multiple-choice prompt, e.g. an HHH row ending "The answer is:"."""
    head, cue, tail = prompt.rpartition(ANSWER)
    if not cue or tail.strip():
        return prompt.strip(), ANSWER
    return head.strip(), ANSWER
