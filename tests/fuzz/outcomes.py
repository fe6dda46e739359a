"""How one fuzz case ended: it ran, it failed with a clear error (naming the key, file or row), or it crashed.

What the CLI shows decides the classes: while composing, Hydra prints its compact errors (composition and override
parse errors, which carry OmegaConf's messages) and cai's CaiError as one message, anything else with a traceback;
once the run has started, only a CaiError is printed as a message. So an exception of any other type, or an error
message naming none of the case's keys, files or rows, counts as a crash and fails the test.
"""
from __future__ import annotations

import collections
from typing import Callable, Dict, Iterable

from hydra.errors import CompactHydraException

from cai.errors import CaiError

COUNTS: Dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
COMPOSE_ERRORS = (CaiError, CompactHydraException)


class Crash(AssertionError):
    """A case that would show the user a traceback or an error that names nothing."""


def attempt(area: str, phase: str, fn: Callable[[], object], names: Iterable[str]) -> str:
    """Run `fn` as `phase` (compose | run) of a case in `area`; returns "ran" or "clear", raises Crash."""
    clear = COMPOSE_ERRORS if phase == "compose" else (CaiError,)
    try:
        fn()
    except clear as err:
        cause = f"\n{err.__cause__}" if isinstance(err, CompactHydraException) and err.__cause__ else ""
        message, wanted = str(err) + cause, [n for n in names if n]  # the CLI prints the cause too
        if not any(n in message for n in wanted):
            COUNTS[area]["crash"] += 1
            raise Crash(f"{area}: the error names none of {wanted}: {message}") from err
        COUNTS[area]["clear"] += 1
        return "clear"
    except Exception as err:
        COUNTS[area]["crash"] += 1
        raise Crash(f"{area}: {phase} raised {type(err).__name__}: {err}") from err
    return "ran"


def finished(area: str, outcome: str) -> None:
    """Count a case that got through every phase (outcome "ran") once."""
    if outcome == "ran":
        COUNTS[area]["ran"] += 1
