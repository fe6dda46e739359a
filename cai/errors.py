"""The user-caused error type, at the bottom of the package: every layer raises it, none imports upward for it."""
from __future__ import annotations


class CaiError(Exception):
    """A user-caused error: reported as one clear message and a non-zero exit, no traceback."""


def first_line(error: BaseException) -> str:
    """The first line of a library's error message (its type name when the message is empty), to quote in one."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
