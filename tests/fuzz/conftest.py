"""Hypothesis profiles for the fuzz tests, and their tally printed at the end of a `-n 0` run.

    python -m pytest tests/fuzz                                  # ci profile: modest counts
    CAI_FUZZ_PROFILE=readme python -m pytest -n 0 tests/fuzz     # the README's figures
"""
from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from tests.fuzz.outcomes import COUNTS

COMMON = dict(deadline=None, database=None, derandomize=True, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
settings.register_profile("ci", max_examples=12, **COMMON)
settings.register_profile("readme", max_examples=150, **COMMON)
settings.load_profile(os.environ.get("CAI_FUZZ_PROFILE", "ci"))


def pytest_terminal_summary(terminalreporter):
    """Cases tried, clear errors and crashes per area (this process's tests only: run with -n 0 for totals)."""
    if not COUNTS:
        return
    write = terminalreporter.write_line
    write(f"\nfuzz cases ({settings().max_examples} max examples per test):")
    write(f"{'area':<14} {'tried':>6} {'ran':>6} {'clear errors':>12} {'crashes':>8}")
    for area, counts in sorted(COUNTS.items()):
        tried = sum(counts.values())
        write(f"{area:<14} {tried:>6} {counts['ran']:>6} {counts['clear']:>12} {counts['crash']:>8}")
