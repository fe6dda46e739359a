"""Content-addressed artifact store: work in `.partial/<key>`, publish by atomic rename, DONE.json written last.

    $CAI_HOME/store/<kind>/<key>/   DONE.json, node.yaml, lineage.json, metrics.json, samples.md, data or model
    $CAI_HOME/store/.partial/<key>/ in flight; a rerun resumes from what is there
    $CAI_HOME/store/.locks/<key>.lock
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterator, Optional

from filelock import FileLock, Timeout

DONE = "DONE.json"


class Store:
    """The artifact store rooted at `$CAI_HOME/store`."""

    def __init__(self, home: Path):
        self.root = Path(home).resolve() / "store"
        (self.root / ".partial").mkdir(parents=True, exist_ok=True)
        (self.root / ".locks").mkdir(parents=True, exist_ok=True)

    def path(self, kind: str, key: str) -> Path:
        """Where the finished artifact of `kind` with `key` lives."""
        return self.root / kind / key

    def partial(self, key: str) -> Path:
        """The in-flight work directory of `key` (kept across crashes so work resumes)."""
        return self.root / ".partial" / key

    def is_done(self, kind: str, key: str) -> bool:
        """Whether a finished artifact exists (DONE.json is written last, so its presence means complete)."""
        return (self.path(kind, key) / DONE).is_file()

    @contextlib.contextmanager
    def lock(self, key: str, wait_message: Optional[callable] = None) -> Iterator[None]:
        """Hold the key's file lock, so two sweep jobs never compute the same node at once."""
        lock = FileLock(str(self.root / ".locks" / f"{key}.lock"))
        try:
            lock.acquire(timeout=0.5)
        except Timeout:
            if wait_message:
                wait_message()
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def publish(self, kind: str, key: str, done: dict) -> Path:
        """Write DONE.json into the partial dir, then rename it into place atomically."""
        work, final = self.partial(key), self.path(kind, key)
        write_json(work / DONE, {**done, "key": key, "kind": kind, "finished": time.time()})
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # cache.mode=refresh: move the old artifact aside, then drop it
            trash = self.root / ".partial" / f"{key}.old.{os.getpid()}"
            os.replace(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(work, final)
        return final

    def discard_partial(self, key: str) -> None:
        """Forget in-flight work (cache.mode=refresh starts over)."""
        shutil.rmtree(self.partial(key), ignore_errors=True)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically: to a temp file beside it, then rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())
