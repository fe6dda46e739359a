"""The run report: `report.md` and `plots/` in a run directory, written after every run and by
`python -m cai.report RUN_DIR`; the sweep report at a multirun root (compare). matplotlib is imported only when a
report is built."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

log = logging.getLogger("cai")


def write_report(run_dir: Path, cfg: Optional[Any] = None) -> Optional[Path]:
    """Build the report after a run; a failure is logged as a warning and never fails the run."""
    try:
        from cai.report.build import build_report

        path = build_report(run_dir, cfg)
    except Exception as err:  # noqa: BLE001 - the run's artifacts matter more than its report
        log.warning("could not write the run report in %s: %s: %s", run_dir, type(err).__name__, err)
        return None
    log.info("report: %s", path)
    return path
