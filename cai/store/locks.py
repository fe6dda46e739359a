"""The store's per-key locks: an OS file lock, plus an owner record saying who holds it.

Semantics relied on (filelock's FileLock):
- Linux and macOS, local filesystems: flock(2). The kernel releases the lock when the holding process exits, however
  it exits (SIGKILL, OOM killer), so a killed holder never leaves a held lock; the next waiter gets it at once.
- NFS: the Linux client maps flock to POSIX byte-range locks that the server tracks (NFSv4 leases, NLM for v3); a
  dead process's locks are released by its client, a dead client's when its lease lapses (~90 s on Linux servers).
  A mount with `nolock` (or `local_lock=all`) only locks within one machine: do not share such a store between
  machines, two jobs could then compute the same node into one .partial folder.
- Windows: LockFileEx, released when the process dies.
- Filesystems without flock (some FUSE or SMB mounts): filelock >= 4 falls back to a marker-file lock that breaks a
  marker left by a dead process on the same host; filelock 3 refuses, and cai says so (CaiError).

The owner record (`<key>.owner`: pid, host, process start time, since when) is written once the lock is held and
removed before it is released. A record found by the next holder was left by a holder that died holding the lock:
it is reported as a stale lock broken (safe, since the OS lock already guarantees nobody else holds the key).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

from filelock import FileLock, Timeout

from cai.errors import CaiError

log = logging.getLogger("cai")
FIRST_TRY_S = 0.5


def me() -> dict:
    """This process's owner record."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "process_started": process_started(os.getpid()),
            "since": time.time()}


def process_started(pid: int) -> Optional[float]:
    """When process `pid` started (tells a live holder from a new process that reused its pid); None if gone."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def holder_alive(owner: dict) -> Optional[bool]:
    """Whether the process of an owner record still runs (None: it ran on another host, so we cannot tell)."""
    if owner.get("host") != socket.gethostname():
        return None
    started = process_started(int(owner.get("pid", -1)))
    return started is not None and abs(started - (owner.get("process_started") or started)) < 1.0


def describe(owner: dict) -> str:
    """`pid 123 on host h, holding it since 12:00:01`."""
    since = time.strftime("%H:%M:%S", time.localtime(owner.get("since", 0)))
    return f"pid {owner.get('pid')} on host {owner.get('host')}, holding it since {since}"


def read_owner(path: Path) -> Optional[dict]:
    """The owner record at `path`, or None (absent, or torn by a kill while it was written)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


@contextlib.contextmanager
def hold(base: Path, wait_message: Optional[Callable[[], None]] = None,
         timeout: Optional[float] = None) -> Iterator[None]:
    """Hold the lock `base`.lock (recording `base`.owner) for the `with` block; see the module docstring."""
    lock, owner_file = FileLock(f"{base}.lock"), Path(f"{base}.owner")
    _acquire(lock, owner_file, wait_message, timeout)
    try:
        _break_stale(owner_file)
        owner_file.write_text(json.dumps(me()))
        yield
    finally:
        with contextlib.suppress(OSError):
            owner_file.unlink()
        lock.release()


def _acquire(lock: FileLock, owner_file: Path, wait_message: Optional[Callable], timeout: Optional[float]) -> None:
    try:
        try:
            lock.acquire(timeout=FIRST_TRY_S if timeout is None else min(FIRST_TRY_S, timeout))
            return
        except Timeout:
            if wait_message:
                wait_message()
            owner = read_owner(owner_file)
            if owner:
                log.info("lock %s is held by %s", Path(lock.lock_file).name, describe(owner))
        lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout - FIRST_TRY_S))
    except Timeout:
        raise CaiError(f"{lock.lock_file}: still held after {timeout} s"
                       + (f" by {describe(read_owner(owner_file))}" if read_owner(owner_file) else "")) from None
    except NotImplementedError as err:  # filelock 3 on a filesystem without flock
        raise CaiError(f"{lock.lock_file}: this filesystem supports no file locks ({err}); put $CAI_HOME on a "
                       f"local disk or NFS with locking, or upgrade filelock to >= 4 (marker-file locks)") from None


def _break_stale(owner_file: Path) -> None:
    """We hold the OS lock, so a record already there belongs to a holder that died holding it: report, replace."""
    stale = read_owner(owner_file) if owner_file.exists() else None
    if stale is not None:
        state = {True: "still running but no longer holding it", False: "no longer running",
                 None: "on another host"}[holder_alive(stale)]
        log.warning("lock %s: broke the stale lock of %s (%s)", owner_file.stem, describe(stale), state)
    elif owner_file.exists():
        log.warning("lock %s: removed a torn owner record (its holder was killed while writing it)", owner_file.stem)
