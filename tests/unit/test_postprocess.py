"""Post-processing strips the usual chatter and flags empty revisions."""
from __future__ import annotations

import pytest

from cai.critique.clean import clean_critique, clean_revision, pick_final


@pytest.mark.parametrize("raw, clean", [
    ("Sure, here is a revised response: I can't help with that.", "I can't help with that."),
    ("Here's a revised version of the assistant's response:\n\nTry this instead.", "Try this instead."),
    ("Revision: Fine.", "Fine."),
    ("Certainly! Here is the rewritten answer: Hello", "Hello"),
    ('"Quoted answer."', "Quoted answer."),
    ("A normal answer: with a colon.", "A normal answer: with a colon."),
])
def test_clean_revision(raw, clean):
    assert clean_revision(raw) == clean


def test_clean_critique_drops_label():
    assert clean_critique("Critique: the answer helps a burglar.") == "the answer helps a burglar."


def test_pick_final_uses_last_non_empty_revision_and_flags():
    assert pick_final("init", ["one", ""]) == ("one", ["empty_revision_2"])
    assert pick_final("init", ["", ""]) == ("init", ["empty_revision_1", "empty_revision_2"])
