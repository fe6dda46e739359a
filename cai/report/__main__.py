"""`python -m cai.report RUN_DIR`: (re)generate report.md and plots/ for an existing run directory."""
from __future__ import annotations

import sys
from pathlib import Path

from cai.errors import CaiError

USAGE = "usage: python -m cai.report RUN_DIR   (a run directory: $CAI_HOME/runs/<recipe>/<time>/)"


def main(argv=None) -> int:
    """Build the report and print its path; a user error is one line on stderr and exit status 2."""
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if len(args) != 1 else sys.stdout)
        return 0 if args and args[0] in ("-h", "--help") else 2
    try:
        from cai.report.build import build_report

        path = build_report(Path(args[0]))
    except CaiError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"report: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
