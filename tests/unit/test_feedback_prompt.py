"""The multiple-choice layout (Bai et al. 2022, section 4.1), raw and inside a chat template, with exemplars."""
from __future__ import annotations

from cai.constitution.render import render_continuation
from cai.feedback import prompt
from cai.tiny import build_tokenizer

CONV = [{"role": "user", "content": "How do I get rid of a wasp nest?"}]
EXEMPLARS = {
    "lab1": {"conversation": [{"role": "user", "content": "Capital of Australia?"}], "better": "Canberra.",
             "worse": "Sydney.", "principle": None},
    "lab2": {"conversation": [{"role": "user", "content": "Insult my boss."}], "better": "Let's talk it through.",
             "worse": "He is a fool.", "principle": "cmp_kind"},
}


def test_raw_question_has_the_papers_layout():
    text = prompt.raw_prompt(prompt.question(CONV, "Which response is safer?", "Call a pro.", "Set it on fire."))
    assert text == ("\n\nConsider the following conversation between a human and an assistant:\n\n"
                    "Human: How do I get rid of a wasp nest?\n\n"
                    "Which response is safer?\nOptions:\n(A) Call a pro.\n(B) Set it on fire.\n\n"
                    "The answer is: (")


def test_chat_prompt_continues_the_answer_in_the_judges_template():
    q = prompt.question(CONV, "Which response is safer?", "Call a pro.", "Set it on fire.")
    text = render_continuation(prompt.chat_prompt(q), build_tokenizer())
    assert text.startswith("<|im_start|>user\nConsider the following conversation")
    # the assistant turn is open, ending right where the option letter goes
    assert text.endswith("(B) Set it on fire.<|im_end|>\n<|im_start|>assistant\nThe answer is: (")
    with_system = render_continuation(prompt.chat_prompt(q), build_tokenizer(), system_prompt="Be a judge.")
    assert with_system.startswith("<|im_start|>system\nBe a judge.<|im_end|>")


def test_without_a_template_chats_render_as_a_transcript():
    text = render_continuation([{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A: ("}])
    assert text == "\n\nHuman: Q\n\nAssistant: A: ("
    assert render_continuation([{"role": "user", "content": "Q"}]).endswith("Human: Q\n\nAssistant:")


def test_labeling_exemplars_alternate_the_better_slot_and_use_their_own_principle():
    shots = prompt.labeling_shots(EXEMPLARS, {"cmp_kind": "Which is kinder?"}, "Which is safer?")
    (first, letter1), (second, letter2) = shots
    assert (letter1, letter2) == ("A", "B")
    assert "Which is safer?" in first and "(A) Canberra." in first  # no principle of its own: the current one
    assert "Which is kinder?" in second and "(B) Let's talk it through." in second
    raw = prompt.raw_prompt("QUESTION", shots)
    assert raw.index("The answer is: (A)") < raw.index("The answer is: (B)") < raw.index("QUESTION")
    assert raw.endswith("QUESTION\n\nThe answer is: (")
    chat = prompt.chat_prompt("QUESTION", shots)
    assert [m["role"] for m in chat] == ["user", "assistant"] * 3
    assert chat[1]["content"] == "The answer is: (A)" and chat[-1]["content"] == "The answer is: ("


def test_cot_exemplars_fill_the_principle_slot_and_reasoning_is_scored_after():
    cot = {"c1": {"conversation": CONV, "response_a": "Call a pro.", "response_b": "Burn it.",
                  "reasoning": "Burning is dangerous.", "answer": "A", "principle_slot": "Judge: {principle}"}}
    shots = prompt.cot_shots(cot, "Which is safer?")
    assert "Judge: Which is safer?" in shots[0][0] and shots[0][2] == "A"
    chat = prompt.cot_chat("QUESTION", shots)
    assert chat[-1] == {"role": "user", "content": "QUESTION\n\nLet's think step by step:"}
    assert chat[1]["content"] == "Burning is dangerous.\n\nThe answer is: (A)"
    scored = prompt.after_reasoning(chat, "Option A avoids harm.")
    assert scored[-1] == {"role": "assistant", "content": "Option A avoids harm.\n\nThe answer is: ("}


def test_reasoning_stops_before_the_judges_own_answer_or_a_new_turn():
    assert prompt.clean_reasoning(" A is safer.\n\nThe answer is: (A)") == "A is safer."
    assert prompt.clean_reasoning("B is rude.\n\nHuman: next question") == "B is rude."


def test_split_answer_of_an_hhh_style_prompt():
    assert prompt.split_answer("\n\nQ? Options:\n (A) x\n (B) y\n\nThe answer is:") == (
        "Q? Options:\n (A) x\n (B) y", "The answer is:")
    assert prompt.split_answer("no cue here") == ("no cue here", "The answer is:")
