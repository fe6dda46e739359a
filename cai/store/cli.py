"""`python -m cai.store ls|verify|gc` (also `cai store ...`): what the store holds, whether it is intact, and
removing what no run directory references.

References are read from every plan.json under $CAI_HOME/runs (each node's artifact path, and the store keys of
the converted models it loaded); a run directory elsewhere (`hydra.run.dir=...`) is added with `--runs DIR`.
"""
from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Set, Tuple

from cai.errors import CaiError
from cai.store import DONE, Store, check_folder, read_json

PARTIAL_HOURS = 24.0


def artifacts(store: Store) -> Iterator[Tuple[str, str, Path]]:
    """(kind, key, folder) of every published artifact."""
    for kind_dir in sorted(p for p in store.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for folder in sorted(p for p in kind_dir.iterdir() if (p / DONE).is_file()):
            yield kind_dir.name, folder.name, folder


def references(home: Path, extra_runs: List[Path]) -> Tuple[Set[Path], bool]:
    """Artifact folders the run directories reference, and whether every plan named its converted models."""
    store_root, found, models_known = Path(home).resolve() / "store", set(), True
    for plan_file in [p for root in [Path(home) / "runs", *extra_runs] for p in Path(root).rglob("plan.json")]:
        try:
            plan = read_json(plan_file)
        except (OSError, ValueError):
            continue
        found |= {Path(n["path"]).resolve() for n in plan.get("nodes", []) if n.get("path")}
        found |= {(store_root / "model" / key).resolve() for key in (plan.get("model_keys") or {}).values()}
        models_known &= "model_keys" in plan
        links = plan_file.parent / "artifacts"
        found |= {p.resolve() for p in links.iterdir() if p.is_symlink()} if links.is_dir() else set()
    return found, models_known


def size_of(path: Path) -> int:
    """Bytes under a folder (or of a file)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def human(size: float) -> str:
    """`12.3 MB`."""
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def cmd_ls(store: Store, args: argparse.Namespace) -> int:
    """One line per artifact: kind, key, node, size, when published, referenced by a run or not."""
    refs, _ = references(store.root.parent, args.runs)
    print(f"{'kind':<18} {'key':<20} {'node':<10} {'size':>9}  {'published':<16} referenced")
    for kind, key, folder in artifacts(store):
        done = _done(folder)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(done.get("finished", 0)))
        print(f"{kind:<18} {key:<20} {str(done.get('node', '-')):<10} {human(size_of(folder)):>9}  {when:<16} "
              f"{'yes' if folder.resolve() in refs else 'no'}")
    partials = [p for p in (store.root / ".partial").iterdir()]
    print(f"{len(partials)} partial (in flight or interrupted), "
          f"{len(list((store.root / '.corrupt').glob('*')))} quarantined as damaged")
    return 0


def cmd_verify(store: Store, args: argparse.Namespace) -> int:
    """Hash every file of every artifact (or `--quick`: sizes only) against DONE.json; exit 1 if any is damaged."""
    damaged = unverified = checked = 0
    for kind, key, folder in artifacts(store):
        if args.keys and key not in args.keys and kind not in args.keys:
            continue
        checked += 1
        if "files" not in _done(folder):
            unverified += 1
            print(f"unverified  {folder}: published without checksums (by an older cai)")
            continue
        problems = check_folder(folder, deep=not args.quick)
        damaged += bool(problems)
        for problem in problems:
            print(f"DAMAGED     {problem}")
    print(f"{checked} artifacts checked ({'sizes' if args.quick else 'sha256'}): {damaged} damaged, "
          f"{unverified} without checksums")
    if damaged:
        print("a damaged artifact is recomputed by the next run that needs it (it is moved to store/.corrupt/)")
    return 1 if damaged else 0


def gc_candidates(store: Store, args: argparse.Namespace) -> Iterator[Tuple[Path, str]]:
    """(path, why) of everything gc removes: unreferenced artifacts, quarantined ones, old partials."""
    refs, models_known = references(store.root.parent, args.runs)
    for kind, key, folder in artifacts(store):
        if folder.resolve() not in refs and (kind != "model" or models_known) and not _in_use(store, key):
            yield folder, "no run directory references it"
    for path in sorted((store.root / ".corrupt").glob("*")):
        yield path, "damaged (quarantined)"
    cutoff = time.time() - args.partial_hours * 3600
    for path in sorted((store.root / ".partial").iterdir()):
        key = path.name.split(".")[0]
        if _newest_mtime(path) < cutoff and not _in_use(store, key):
            yield path, f"partial untouched for over {args.partial_hours:g} h"


def cmd_gc(store: Store, args: argparse.Namespace) -> int:
    """Remove (or with --dry-run, list) what gc_candidates finds, printing each path and the bytes freed."""
    freed = count = 0
    for path, why in list(gc_candidates(store, args)):
        size = size_of(path)
        print(f"{'would remove' if args.dry_run else 'removed'} {path} ({human(size)}): {why}")
        if not args.dry_run:
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        freed, count = freed + size, count + 1
    locks = remove_unheld_locks(store, args.dry_run)
    print(f"{'would free' if args.dry_run else 'freed'} {human(freed)} in {count} entries; "
          f"{locks} lock files of keys nobody works on {'would be ' if args.dry_run else ''}removed")
    return 0


def remove_unheld_locks(store: Store, dry_run: bool) -> int:
    """Unlink the lock files (and stale owner records) of keys with no partial, each while holding its lock, so
    a job that opened the old file retries on a new one (filelock >= 4 checks the inode it locked)."""
    removed = 0
    for lock_file in sorted((store.root / ".locks").glob("*.lock")):
        key = lock_file.name[:-len(".lock")]
        if store.partial(key).exists():
            continue
        try:
            with store.lock(key, timeout=0):
                if not dry_run:
                    lock_file.unlink(missing_ok=True)
                removed += 1
        except CaiError:
            pass  # held: a job is working on it
    return removed


def _in_use(store: Store, key: str) -> bool:
    """Whether a job holds the key's lock right now (its artifact or partial is being worked on)."""
    if not (store.root / ".locks" / f"{key}.lock").exists():
        return False
    try:
        with store.lock(key, timeout=0):
            return False
    except CaiError:
        return True


def _newest_mtime(path: Path) -> float:
    times = [p.stat().st_mtime for p in [path, *path.rglob("*")] if not p.is_symlink()]
    return max(times)


def _done(folder: Path) -> Dict:
    try:
        return read_json(folder / DONE)
    except (OSError, ValueError):
        return {}


def parser() -> argparse.ArgumentParser:
    """The command line of `python -m cai.store`."""
    top = argparse.ArgumentParser(prog="python -m cai.store", description=__doc__.split("\n\n")[0])
    top.add_argument("--home", default=os.environ.get("CAI_HOME", "cai_home"), help="$CAI_HOME (default ./cai_home)")
    commands = top.add_subparsers(dest="command", required=True)
    for name, what in (("ls", "list artifacts"), ("verify", "check every artifact against its checksums"),
                       ("gc", "remove artifacts no run directory references, quarantined ones and old partials")):
        sub = commands.add_parser(name, help=what, description=what)
        sub.add_argument("--runs", type=Path, action="append", default=[], help="another folder of run directories")
    commands.choices["verify"].add_argument("keys", nargs="*", help="only these keys or kinds")
    commands.choices["verify"].add_argument("--quick", action="store_true", help="sizes only, no hashing")
    commands.choices["gc"].add_argument("--dry-run", action="store_true", help="list what would be removed")
    commands.choices["gc"].add_argument("--partial-hours", type=float, default=PARTIAL_HOURS,
                                        help=f"remove partials untouched this long (default {PARTIAL_HOURS:g})")
    return top


def main(argv: Optional[List[str]] = None) -> int:
    """Run one store command; returns the exit code."""
    args = parser().parse_args(argv)
    home = Path(args.home)
    if not (home / "store").is_dir():
        print(f"error: no store at {home / 'store'} (set $CAI_HOME or --home)")
        return 2
    return {"ls": cmd_ls, "verify": cmd_verify, "gc": cmd_gc}[args.command](Store(home), args)
