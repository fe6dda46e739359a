"""Walk the store's lineage: an artifact's ancestors through the `lineage.json` each node writes (inputs that are
nodes carry their artifact path), shared by held-out prompt selection and the eval judge's independence check."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, Tuple

from cai.stage_api import log


def read_lineage(path: Path) -> Dict[str, Any]:
    """An artifact's lineage.json, or {} (with a warning) when it has none."""
    lineage = path / "lineage.json"
    if not lineage.is_file():
        log.warning("%s has no lineage.json: what its ancestors did cannot be traced", path)
        return {}
    found = json.loads(lineage.read_text(encoding="utf-8"))
    return found if isinstance(found, dict) else {}


def walk(artifacts: Iterable[Path]) -> Iterator[Tuple[Path, Dict[str, Any]]]:
    """(artifact folder, its lineage) for the artifacts and every ancestor, each once."""
    visited = set()
    stack = [Path(p) for p in artifacts]
    while stack:
        path = stack.pop()
        if str(path) in visited:
            continue
        visited.add(str(path))
        lineage = read_lineage(path)
        yield path, lineage
        for inp in (lineage.get("inputs") or {}).values():
            if isinstance(inp, dict) and inp.get("path"):
                stack.append(Path(inp["path"]))
