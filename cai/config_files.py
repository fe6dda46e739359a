"""The user's own config folders (`--config-dir DIR`, `hydra.searchpath=[file://DIR]`) checked before Hydra reads
them: Hydra reports a YAML syntax error, a non-UTF-8 file or a malformed defaults list with a traceback, so each is
named here first as one CaiError naming the file (and line). cai's shipped conf/ is tested, so it is not re-read.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, List, Sequence

import yaml

from cai.errors import CaiError

_SEARCHPATH = re.compile(r"^\+*hydra\.searchpath=\[?(.*?)\]?$")


def user_config_dirs(argv: Sequence[str]) -> List[Path]:
    """Folders named by `--config-dir`/`-cd` and `hydra.searchpath` (file:// entries) on a command line."""
    dirs, args = [], list(argv)
    for i, arg in enumerate(args):
        if arg in ("--config-dir", "-cd") and i + 1 < len(args):
            dirs.append(args[i + 1])
        elif arg.startswith(("--config-dir=", "-cd=")):
            dirs.append(arg.split("=", 1)[1])
        elif _SEARCHPATH.match(arg):
            entries = [e.strip().strip("'\"") for e in _SEARCHPATH.match(arg).group(1).split(",")]
            dirs += [e[len("file://"):] for e in entries if e.startswith("file://")]
    return [Path(d).expanduser() for d in dirs if d]


def check_user_configs(argv: Sequence[str]) -> None:
    """Every YAML file under the user's config folders parses as a mapping with a list for `defaults`."""
    for folder in user_config_dirs(argv):
        for path in sorted(folder.rglob("*.yaml")) if folder.is_dir() else []:
            for problem in file_problems(path):
                raise CaiError(f"{path}: {problem}")


def file_problems(path: Path) -> Iterator[str]:
    """What keeps Hydra from reading one config file (nothing for a good one)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        yield f"not UTF-8 text (byte {err.start} is {data[err.start]:#04x})"
        return
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        yield f"not valid YAML{where}: {getattr(err, 'problem', None) or err}"
        return
    if content is not None and not isinstance(content, dict):
        yield f"a config file holds a mapping (key: value), not a {type(content).__name__}"
    elif isinstance(content, dict) and "defaults" in content:
        defaults = content["defaults"]
        if not isinstance(defaults, list):
            yield f"`defaults` must be a list (of `group: option` entries and `_self_`), got {defaults!r}"
        else:
            yield from (f"`defaults` entry {entry!r}: expected `group: option`, `group: [options]` or a name"
                        for entry in defaults if not _entry_ok(entry))


def _entry_ok(entry) -> bool:
    if isinstance(entry, str):
        return bool(entry)
    if not isinstance(entry, dict) or len(entry) != 1:
        return False
    (key, value), = entry.items()
    if isinstance(value, list):  # a multi-select: option names only
        return isinstance(key, str) and all(isinstance(o, str) for o in value)
    return isinstance(key, str) and (isinstance(value, str) or value is None)  # `group: null` drops the group
