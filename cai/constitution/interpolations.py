"""Find `${...}` in constitution text that OmegaConf cannot resolve, before a stage or `show` trips over it."""
from __future__ import annotations

from typing import Iterable, Iterator, NamedTuple, Optional, Union

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import GrammarParseError, InterpolationResolutionError

from cai.errors import first_line

_ERRORS = (InterpolationResolutionError, GrammarParseError)


class Unresolved(NamedTuple):
    """A value that does not resolve: `key` inside item `id` of `section`, or the full key when section is None."""

    section: Optional[str]
    id: str
    key: str
    problem: str


def unresolved(constitution: Union[DictConfig, dict], sections: Iterable[str]) -> Iterator[Unresolved]:
    """Every value of `constitution` whose interpolation fails, placed in its id-keyed section when it has one."""
    try:
        node = constitution if isinstance(constitution, DictConfig) else OmegaConf.create(constitution)
    except _ERRORS as err:  # a plain dict is parsed on creation, so a malformed ${ fails here
        yield _place(str(getattr(err, "full_key", "") or "?"), _problem(err), sections)
        return
    for path, err in _walk(node, ""):
        yield _place(path, _problem(err), sections)


def _walk(node: Union[DictConfig, ListConfig], path: str) -> Iterator[tuple]:
    is_list = isinstance(node, ListConfig)
    for key in range(len(node)) if is_list else list(node.keys()):
        where = f"{path}[{key}]" if is_list else f"{path}.{key}".lstrip(".")
        if OmegaConf.is_missing(node, key):
            continue  # validation reports missing values itself
        try:
            value = node[key]  # resolves an interpolation
        except _ERRORS as err:
            yield where, err
            continue
        if isinstance(value, (DictConfig, ListConfig)) and not OmegaConf.is_interpolation(node, key):
            yield from _walk(value, where)


def _problem(err: Exception) -> str:
    return f"has a ${{...}} interpolation that does not resolve ({first_line(err)}); write \\${{ for a literal ${{"


def _place(path: str, problem: str, sections: Iterable[str]) -> Unresolved:
    """Split `path` into section, id and key inside the item (longest matching section first)."""
    for section in sorted(sections, key=len, reverse=True):
        if path.startswith(section + "."):
            id_, _, key = path[len(section) + 1:].partition(".")
            return Unresolved(section, id_, key, problem)
    return Unresolved(None, "", path, problem)
