"""Check a composed constitution and its group files, naming the YAML file and key of every problem."""
from __future__ import annotations

import difflib
import math
from dataclasses import fields
from itertools import chain
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import yaml
from omegaconf import DictConfig, OmegaConf

from cai import schema
from cai.constitution.files import SECTION_GROUPS, Loaded, find_duplicate_ids, unique_dirs
from cai.constitution.interpolations import unresolved
from cai.errors import CaiError

ROLES = ("system", "user", "assistant")


def validate_constitution(constitution: Union[DictConfig, dict], search_dirs: Optional[List[Path]] = None,
                          loaded: Optional[Loaded] = None) -> None:
    """Raise CaiError listing every problem in `constitution` and its `loaded` files, each naming file and key."""
    data = _plain(constitution)
    report = _Report(unique_dirs(search_dirs if search_dirs is not None else _default_dirs()))
    name = data.get("name")
    if _blank(name):
        _missing_name(report, (loaded or {}).get("", set()))
    _check_sections(data, report)
    _check_interpolations(constitution, report)
    _check_select(data, report, str(name))
    _check_files(data, report, loaded or {})
    if report.problems:
        lines = "\n".join(f"  - {p}" for p in report.problems)
        what = "the constitution" if _blank(name) else f"constitution {name!r}"
        raise CaiError(f"{what} is invalid ({len(report.problems)} problem(s)):\n{lines}")


class _Report:
    """Collects problems, naming for each the group file that defines the id (looked up once, then cached)."""

    def __init__(self, dirs: Sequence[Path]):
        self.dirs = dirs
        self.problems: List[str] = []
        self._files: Dict[tuple, Optional[Path]] = {}

    def add(self, section: str, id_: str, key: str, problem: str) -> None:
        """Record `problem` for `key` (relative to the id's entry) of `id_` in `section`."""
        full = ".".join(p for p in ("constitution", section, id_, key) if p)
        path = self.file(SECTION_GROUPS[section], id_)
        if path is None:
            self.problems.append(f"{full} {problem}")
        else:
            self.problems.append(f"{path}: {'.'.join(p for p in (id_, key) if p)} {problem} (key {full})")

    def file(self, group: str, id_: str) -> Optional[Path]:
        """The file defining `id_` in `group` ('' for the constitution files themselves), or None."""
        if (group, id_) not in self._files:
            self._files[(group, id_)] = _find_file(self.dirs, group, id_)
        return self._files[(group, id_)]


def _find_file(dirs: Sequence[Path], group: str, id_: str) -> Optional[Path]:
    """The first file under dirs' constitution/<group>/ defining `id_`: `<id>.yaml` by convention, else any."""
    for folder in (Path(d) / "constitution" / group for d in dirs):
        conventional = folder / f"{id_}.yaml"
        if not group:  # constitution files are selected by file name, so only the conventional one counts
            if conventional.is_file():
                return conventional
            continue
        for path in [conventional] + sorted(p for p in folder.glob("*.yaml") if p != conventional):
            if path.is_file() and id_ in _top_keys(path):
                return path
    return None


def _top_keys(path: Path) -> List[str]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return []
    return [str(k) for k in data] if isinstance(data, dict) else []


def _check_sections(data: dict, report: _Report) -> None:
    for section in _RULES:
        for id_, item in _section(data, section).items():
            for key, problem in item_problems(section, item):
                report.add(section, str(id_), key, problem)


def item_problems(section: str, item: Any) -> Problems:
    """(key, problem) for one entry of `section` ("fewshot.cot", ...): unknown keys, then the section's rules."""
    if not isinstance(item, dict):
        yield "", "must be a mapping of fields"
        return
    yield from chain(_unknown_keys(item, _FIELDS[section]), _RULES[section](item))


def _missing_name(report: _Report, options: set) -> None:
    where = next(filter(None, (report.file("", o) for o in sorted(options))), None)
    report.problems.append(f"{where}: name is missing or empty (key constitution.name)" if where
                           else "constitution.name is missing or empty")


def _check_interpolations(constitution: Union[DictConfig, dict], report: _Report) -> None:
    for section, id_, key, problem in unresolved(constitution, SECTION_GROUPS):
        if section is None:
            report.problems.append(f"constitution.{key} {problem}")
        else:
            report.add(section, id_, key, problem)


def _check_files(data: dict, report: _Report, loaded: Loaded) -> None:
    # Only files this constitution uses: its composed ids, and the files it loads (an empty one composes no id).
    used = {group: set(_section(data, key)) | loaded.get(group, set()) for key, group in SECTION_GROUPS.items()}
    for problem in find_duplicate_ids(report.dirs):
        stems = {Path(f).stem for f in problem.files}
        if problem.id in used[problem.group] or stems & used[problem.group]:
            report.problems.append(problem.message)


def _check_select(data: dict, report: _Report, name: str) -> None:
    for key, section in (("select", "critique_revision"), ("comparison_select", "comparison")):
        unknown = [i for i in data.get(key) or [] if i not in _section(data, section)]
        if unknown:
            where = report.file("", name)
            available = sorted(_section(data, section))
            msg = f"names unknown {section} id(s) {unknown}; available: {available}"
            report.problems.append(f"{where}: {key} {msg}" if where else f"constitution.{key} {msg}")


def _section(data: dict, dotted: str) -> Dict[str, Any]:
    node: Any = data
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _plain(constitution: Union[DictConfig, dict]) -> dict:
    # Missing values stay as "???" so they can be reported instead of raising on access.
    if isinstance(constitution, DictConfig):
        return OmegaConf.to_container(constitution, resolve=False, throw_on_missing=False)
    return dict(constitution)


def _blank(value: Any) -> bool:
    return value is None or value == "???" or not str(value).strip()


def _default_dirs() -> List[Path]:
    from cai.paths import conf_dir

    try:
        return [conf_dir()]
    except CaiError:  # a checkout whose primary config is not written yet still has conf/
        path = Path(__file__).resolve().parents[2] / "conf"
        return [path] if path.is_dir() else []


Problems = Iterator[Tuple[str, str]]  # (key inside the item, what is wrong)


def _text(item: dict, *keys: str) -> Problems:
    for key in keys:
        value = item.get(key)
        if value is None or value == "???":
            yield key, "is missing"
        elif not isinstance(value, str):
            yield key, f"must be text, got {type(value).__name__}"
        elif not value.strip():
            yield key, "is empty"


def _unknown_keys(item: dict, known: Sequence[str]) -> Problems:
    for key in item:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            yield str(key), "is not a field" + (f" (did you mean {close[0]!r}?)" if close else f"; fields: {list(known)}")


def _tags(item: dict) -> Problems:
    tags = item.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        yield "tags", f"must be a list of text, got {tags!r}"


def _weight(item: dict) -> Problems:
    value = item.get("weight", 1.0)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        yield "weight", f"must be a number > 0, got {value!r}"


def _chat(item: dict, key: str, last: str) -> Problems:
    """Messages must be user/assistant turns alternating from a user turn (after one optional system message)."""
    messages = item.get(key)
    if not isinstance(messages, list) or not messages:
        yield key, "is missing or empty"
        return
    roles = []
    for i, message in enumerate(messages):
        message = message if isinstance(message, dict) else {}
        if message.get("role") not in ROLES:
            yield f"{key}[{i}].role", f"must be one of {'/'.join(ROLES)}, got {message.get('role')!r}"
        yield from ((f"{key}[{i}].{k}", p) for k, p in _text(message, "content"))
        roles.append(message.get("role"))
    start = 1 if roles[0] == "system" else 0
    if start == len(roles) or roles[start] != "user":
        yield key, "must start with a user turn (after an optional leading system message)"
    for i in range(start + 1, len(roles)):
        if roles[i] == roles[i - 1] or roles[i] == "system":
            yield key, f"roles must alternate user/assistant: {key}[{i - 1}] and [{i}] are {roles[i - 1]}, {roles[i]}"
    if roles[-1] != last:
        yield key, f"must end on a{'n' if last[0] == 'a' else ''} {last} turn, ends on {roles[-1]!r}"


def _principle(item: dict) -> Problems:
    yield from _text(item, "critique", "revision")
    yield from _weight(item)
    yield from _tags(item)


def _comparison(item: dict) -> Problems:
    yield from _text(item, "text")
    yield from _weight(item)
    yield from _tags(item)


def _exemplar(item: dict) -> Problems:
    yield from _chat(item, "messages", "assistant")


def _labeling(item: dict) -> Problems:
    # The labeler appends the two responses after this conversation, so it ends on the user's turn.
    yield from _chat(item, "conversation", "user")
    yield from _text(item, "better", "worse")


def _cot(item: dict) -> Problems:
    yield from _chat(item, "conversation", "user")
    yield from _text(item, "response_a", "response_b", "reasoning", "answer")
    if "principle_slot" in item:
        yield from _text(item, "principle_slot")
    if item.get("answer") not in ("A", "B", None, "???"):
        yield "answer", f"must be A or B, got {item.get('answer')!r}"
    slot = item.get("principle_slot")
    if isinstance(slot, str) and "{principle}" not in slot:
        yield "principle_slot", f"must contain {{principle}} where the principle goes, got {slot!r}"


_RULES = {
    "critique_revision": _principle,
    "comparison": _comparison,
    "fewshot.critique_revision": _exemplar,
    "fewshot.labeling": _labeling,
    "fewshot.cot": _cot,
}
# The fields each section's entries may have (cai.schema keeps the maps untyped; see Constitution).
_FIELDS = {section: [f.name for f in fields(cls)] for section, cls in (
    ("critique_revision", schema.Principle), ("comparison", schema.ComparisonPrinciple),
    ("fewshot.critique_revision", schema.CritiqueRevisionExemplar), ("fewshot.labeling", schema.LabelingExemplar),
    ("fewshot.cot", schema.CotExemplar))}
