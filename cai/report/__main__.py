"""`python -m cai.report RUN_DIR`: (re)generate report.md and plots/ for an existing run directory;
`python -m cai.report --compare DIR`: the comparison report of a sweep at its multirun root."""
from __future__ import annotations

import sys
from pathlib import Path

from cai.errors import exit_status

USAGE = ("usage: python -m cai.report RUN_DIR          (a run directory: $CAI_HOME/runs/<recipe>/<time>/)\n"
         "       python -m cai.report --compare DIR    (a sweep's multirun root: $CAI_HOME/runs/multirun/<time>/)")


def main(argv=None) -> int:
    """Build the report and print its path; a user error is one line on stderr and exit status 2."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    compare = bool(args) and args[0] == "--compare"
    if len(args) != 1 + compare:
        print(USAGE, file=sys.stderr)
        return 2
    return exit_status(lambda: print(f"report: {build(Path(args[-1]), compare)}"))


def build(run_dir: Path, compare: bool) -> Path:
    """A run's report, or a sweep's comparison report; returns its path."""
    if compare:
        from cai.report.compare import build_compare

        return build_compare(run_dir)
    from cai.report.build import build_report

    return build_report(run_dir)


if __name__ == "__main__":
    sys.exit(main())
