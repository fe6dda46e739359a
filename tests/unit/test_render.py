"""render_chat with and without a chat template, and `show`'s exemplar as the model sees it (offline tokenizer)."""
from __future__ import annotations

import io

import pytest
from rich.console import Console

from cai.constitution import show as show_module
from cai.constitution.render import render_chat, transcript

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
CHAT = [{"role": "user", "content": "Name a fruit."}, {"role": "assistant", "content": "A pear."},
        {"role": "user", "content": "Another?"}]


@pytest.fixture(scope="module")
def chatml_tokenizer():
    """A byte-level BPE tokenizer trained on a few words, wrapped for transformers, with a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    raw.train_from_iterator([m["content"] for m in CHAT] * 4, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|im_end|>", pad_token="<|im_end|>")
    tokenizer.chat_template = CHATML
    return tokenizer


def test_transcript_without_tokenizer():
    expected = "\n\nHuman: Name a fruit.\n\nAssistant: A pear.\n\nHuman: Another?"
    assert render_chat(CHAT) == expected + "\n\nAssistant:"
    assert render_chat(CHAT, None, add_generation_prompt=False) == expected
    assert transcript([{"role": "system", "content": "Be brief."}], False) == "\n\nSystem: Be brief."


def test_chat_template_is_used_when_present(chatml_tokenizer):
    expected = ("<|im_start|>user\nName a fruit.<|im_end|>\n<|im_start|>assistant\nA pear.<|im_end|>\n"
                "<|im_start|>user\nAnother?<|im_end|>\n")
    assert render_chat(CHAT, chatml_tokenizer, add_generation_prompt=False) == expected
    assert render_chat(CHAT, chatml_tokenizer) == expected + "<|im_start|>assistant\n"
    ids = chatml_tokenizer(render_chat(CHAT, chatml_tokenizer))["input_ids"]
    assert chatml_tokenizer.convert_tokens_to_ids("<|im_start|>") in ids  # special tokens stay single tokens


def test_tokenizer_without_template_falls_back_to_transcript(chatml_tokenizer):
    class Plain:
        chat_template = None

    assert render_chat(CHAT, Plain()) == transcript(CHAT)


def test_exemplar_chat_picks_and_prefixes_system_prompt():
    fewshot = {"critique_revision": {"first": {"messages": CHAT[:2]}, "second": {"messages": CHAT[1:]}}}
    assert show_module.exemplar_chat(fewshot, None, None) == ("first", CHAT[:2])
    id_, chat = show_module.exemplar_chat(fewshot, "second", "Be brief.")
    assert id_ == "second" and chat[0] == {"role": "system", "content": "Be brief."} and chat[1:] == CHAT[1:]
    assert show_module.exemplar_chat({"critique_revision": {}}, None, None) == (None, [])
    with pytest.raises(show_module.CaiError, match="available: \\['first', 'second'\\]"):
        show_module.exemplar_chat(fewshot, "third", None)


def _shown(**kwargs) -> str:
    console = Console(file=io.StringIO(), width=200)
    show_module.show("harmless", console=console, **kwargs)
    return console.file.getvalue()


def test_show_renders_the_exemplar_as_a_transcript_by_default():
    out = _shown()
    assert "critique/revision principles" in out and "comparison principles" in out
    assert "a Human:/Assistant: transcript" in out and "\n\nHuman: " in out and "<|im_start|>" not in out


def test_show_with_model_uses_its_chat_template(monkeypatch, chatml_tokenizer):
    # The tokenizer comes from the fixture, not from building the model: no downloads, no torch.
    monkeypatch.setattr(show_module, "_tokenizer", lambda spec, home: chatml_tokenizer)
    out = _shown(model="tiny_random")
    assert "model tiny_random's chat template" in out
    assert "<|im_start|>user\n" in out and "<|im_start|>assistant\n" in out and "Human: " not in out
