"""Content-addressed artifact store: work in `.partial/<key>`, publish by atomic rename, DONE.json written last.

    $CAI_HOME/store/<kind>/<key>/   DONE.json (each file's size and sha256), node.yaml, lineage.json, metrics.json,
                                    samples.md, data or model
    $CAI_HOME/store/.partial/<key>/ in flight; a rerun resumes from what is there
    $CAI_HOME/store/.locks/<key>.lock, <key>.owner (who holds it; see cai/store/locks.py for the semantics)
    $CAI_HOME/store/.corrupt/<kind>.<key>.<time>/   artifacts that failed verification, kept until `gc`

Reading a published artifact verifies it (`Store.check`): every file's size always, and its sha256 when the whole
artifact is at most HASH_ON_READ_BYTES (data artifacts; big checkpoints are hashed by `python -m cai.store verify`).
Maintenance commands (`python -m cai.store ls|verify|gc`): cai/store/cli.py.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

from cai.store import locks
from cai.errors import CaiError, first_line

DONE = "DONE.json"
TMP_SUFFIX = ".cai-tmp"
DISK_ERRNOS = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
"""Write failures that mean "no room": a full disk, the file size limit (RLIMIT_FSIZE), a quota."""
HASH_ON_READ_BYTES = 64 * 2**20
"""Artifacts up to this size are hashed each time they are read; larger ones have their sizes checked."""


class StoreWriteError(CaiError):
    """A write into the store or a run directory failed (disk full, file size limit, ...); names the path."""


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

    def check(self, kind: str, key: str, deep: Optional[bool] = None) -> List[str]:
        """What is wrong with a published artifact (empty: intact): files missing, sizes changed (truncated) and,
        when `deep` (default: the artifact is small), contents changed. Each problem names the file."""
        return check_folder(self.path(kind, key), deep)

    @contextlib.contextmanager
    def lock(self, key: str, wait_message: Optional[Callable[[], None]] = None,
             timeout: Optional[float] = None) -> Iterator[None]:
        """Hold the key's file lock, so two jobs never compute the same node at once (cai/store/locks.py: an OS
        lock the kernel releases when its holder dies, so a killed holder leaves nothing to clean up).
        `wait_message` is called once if another process holds it; `timeout` (seconds, None: wait forever) raises
        CaiError."""
        with locks.hold(self.root / ".locks" / key, wait_message=wait_message, timeout=timeout):
            yield

    def publish(self, kind: str, key: str, done: dict) -> Path:
        """Record every file's size and sha256 in DONE.json inside the partial dir, then rename it into place."""
        work, final = self.partial(key), self.path(kind, key)
        remove_temp_files(work)
        files = manifest(work)
        write_json(work / DONE, {**done, "key": key, "kind": kind, "finished": time.time(),
                                 "bytes": sum(f["size"] for f in files.values()), "files": files})
        final.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if final.exists():  # cache.mode=refresh, or a damaged artifact: move the old one aside, then drop it
            old = self.root / ".partial" / f"{key}.old.{os.getpid()}"
            os.replace(final, old)
        try:
            os.replace(work, final)
        except OSError:
            if old is not None:
                os.replace(old, final)  # the previous state stays as it was
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def quarantine(self, kind: str, key: str) -> Path:
        """Move a damaged artifact into .corrupt/ (kept for inspection until gc), so the node is recomputed."""
        dest = self.root / ".corrupt" / f"{kind}.{key}.{time.strftime('%Y%m%d-%H%M%S')}.{os.getpid()}"
        dest.parent.mkdir(exist_ok=True)
        os.replace(self.path(kind, key), dest)
        return dest

    def discard_partial(self, key: str) -> None:
        """Forget in-flight work (cache.mode=refresh starts over)."""
        shutil.rmtree(self.partial(key), ignore_errors=True)


def check_folder(folder: Path, deep: Optional[bool] = None) -> List[str]:
    """Problems of one published artifact folder against its DONE.json (see Store.check)."""
    try:
        done = read_json(folder / DONE)
        files = done.get("files")
    except (OSError, ValueError, AttributeError) as err:
        return [f"{folder / DONE}: unreadable ({type(err).__name__})"]
    if files is None:
        return []  # published before checksums were recorded: nothing to compare (`verify` lists it)
    if not isinstance(files, dict) or not all(isinstance(f, dict) and {"size", "sha256"} <= set(f)
                                              for f in files.values()):
        return [f"{folder / DONE}: its file list is malformed"]
    if deep is None:
        deep = sum(f["size"] for f in files.values()) <= HASH_ON_READ_BYTES
    problems = []
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.stat().st_size != expected["size"]:
            problems.append(f"{path}: {path.stat().st_size} bytes, {expected['size']} when published (truncated "
                            f"or overwritten)")
        elif deep and sha256(path) != expected["sha256"]:
            problems.append(f"{path}: content changed since it was published (sha256 differs)")
    return problems


def manifest(folder: Path) -> Dict[str, Dict[str, Any]]:
    """Every file under `folder` but DONE.json: relative path -> size and sha256, in sorted order."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if name != DONE:
            files[name] = {"size": path.stat().st_size, "sha256": sha256(path)}
    return files


def sha256(path: Path) -> str:
    """A file's sha256, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def temp_path(path: Path) -> Path:
    """Where an atomic write of `path` goes first (beside it; per process, so concurrent writers never share)."""
    return path.with_name(f".{path.name}.{os.getpid()}{TMP_SUFFIX}")


def remove_temp_files(folder: Path) -> None:
    """Drop temp files a killed atomic write left behind, so they are not published with the artifact."""
    for path in folder.rglob(f"*{TMP_SUFFIX}"):
        path.unlink(missing_ok=True)


def write_failure(path: Path, err: BaseException) -> str:
    """The message for a failed write: the path, the reason, and what to do about a full disk."""
    code = getattr(err, "errno", None) or next((c for c in DISK_ERRNOS if os.strerror(c) in str(err)), None)
    reason = getattr(err, "strerror", None) or (os.strerror(code) if code else first_line(err))
    hint = {errno.ENOSPC: "the disk is full", errno.EFBIG: "the file size limit (ulimit -f) was reached",
            errno.EDQUOT: "the disk quota is exceeded"}.get(code)
    tail = f" ({hint}; free space and rerun: finished work is kept)" if hint else ""
    return f"could not write {path}: {reason}{tail}"


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write a file through a temp file beside it, fsync and rename: readers see the old or the new file, never
    half of one. A failure (disk full) leaves the old file in place and raises StoreWriteError naming `path`."""
    path, tmp = Path(path), temp_path(Path(path))
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise StoreWriteError(write_failure(path, err)) from None


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (see atomic_write)."""
    atomic_write(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text())
