"""The user-caused error type, at the bottom of the package: every layer raises it, none imports upward for it."""
from __future__ import annotations

import sys
from typing import Callable, Optional


class CaiError(Exception):
    """A user-caused error: reported as one clear message and a non-zero exit, no traceback."""


def first_line(error: BaseException) -> str:
    """The first line of a library's error message (its type name when the message is empty), to quote in one."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def exit_status(command: Callable[[], Optional[int]]) -> int:
    """Run a command-line tool's body: its exit status (0 when it returns None), or 2 with a CaiError printed as
    one line on stderr."""
    try:
        status = command()
    except CaiError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0 if status is None else status
