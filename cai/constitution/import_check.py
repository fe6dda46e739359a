"""Check an import before anything is written: every problem names the input file and entry it comes from."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, List, Sequence, Tuple

from cai.constitution.files import SECTION_GROUPS
from cai.constitution.validate import item_problems
from cai.errors import CaiError

if TYPE_CHECKING:
    from cai.constitution.importers import Library

Origin = Tuple[str, str]  # (input file, entry in it), e.g. ("swarm.json", "system_chat[0]")
_SECTIONS = {group: section for section, group in SECTION_GROUPS.items()}


def check_library(lib: "Library", files: Sequence[Path]) -> None:
    """Raise CaiError listing each entry that would be written invalid or overwrite another, and an empty import."""
    problems = _collisions(lib) + _invalid_items(lib)
    if not lib.groups["principle"] and not lib.groups["comparison"]:
        problems.append(f"{', '.join(map(str, files))}: no principles found (critique/revision or comparison), "
                        "so the constitution would have none to sample")
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise CaiError(f"import of {lib.name!r} would write an invalid constitution, so nothing was written "
                       f"({len(problems)} problem(s)):\n{lines}")


def output_root(out: Path) -> Path:
    """`out`/constitution, created: a clear CaiError when `out` is a file or cannot be created."""
    if out.exists() and not out.is_dir():
        raise CaiError(f"-o {out}: is a file, not a directory; give a directory for the imported config")
    root = out.resolve() / "constitution"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CaiError(f"-o {out}: cannot create {root}: {err.strerror or err}") from err
    return root


def _collisions(lib: "Library") -> List[str]:
    # Ids are cleaned to letters, digits and _, so two upstream keys can become one id and one file.
    problems = []
    for (group, id_), origins in lib.origins.items():
        if len(origins) > 1:
            both = "both" if len(origins) == 2 else "all"
            problems.append(f"{_where(origins)} {both} become {group} id {id_!r} (ids keep only letters, digits and "
                            "_), so one would overwrite the other; rename one of them")
    return problems


def _invalid_items(lib: "Library") -> List[str]:
    problems = []
    for group, items in lib.groups.items():
        for id_, item in items.items():
            where = _where(lib.origins[(group, id_)][-1:])
            problems += [f"{where}: {key or 'entry'} {problem} (would be written to {group}/{id_}.yaml)"
                         for key, problem in item_problems(_SECTIONS[group], item)]
    return problems


def _where(origins: Sequence[Origin]) -> str:
    """`file: entry`, or `file: entry1 and entry2` when all come from one file."""
    if len({file for file, _ in origins}) == 1:
        return f"{origins[0][0]}: " + " and ".join(entry for _, entry in origins)
    return " and ".join(f"{file}: {entry}" for file, entry in origins)
