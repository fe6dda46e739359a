"""The group files behind a constitution: the ids each defines, and which ones a composition loads."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Set

import yaml

# Where each id-keyed section of a constitution comes from: one file per id in these group folders.
SECTION_GROUPS = {
    "critique_revision": "principle",
    "comparison": "comparison",
    "fewshot.critique_revision": "exemplar",
    "fewshot.labeling": "label_exemplar",
    "fewshot.cot": "cot_exemplar",
}
Loaded = Dict[str, Set[str]]  # group folder ('' for constitution/ itself) -> option names loaded from it


class IdProblem(NamedTuple):
    """A group file problem that Hydra would merge or rename silently: `id` in `group`, found in `files`."""

    group: str
    id: str
    files: tuple
    message: str


def find_duplicate_ids(search_dirs: Iterable[Path]) -> List[IdProblem]:
    """Group files whose top-level ids collide, or whose id differs from the file name, across `search_dirs`."""
    problems: List[IdProblem] = []
    for group in SECTION_GROUPS.values():
        owners: Dict[str, List[Path]] = {}
        for folder in (Path(d) / "constitution" / group for d in unique_dirs(search_dirs)):
            for path in sorted(folder.glob("*.yaml")):
                for key in _file_ids(path, group, problems):
                    owners.setdefault(key, []).append(path)
        for key, files in owners.items():
            if len(files) > 1:
                listed = " and ".join(map(str, files))
                msg = (f"id {key!r} is defined by {len(files)} {group} files, {listed}; "
                       "Hydra silently merges (or shadows) them")
                problems.append(IdProblem(group, key, tuple(files), msg))
    return problems


def _file_ids(path: Path, group: str, problems: List[IdProblem]) -> List[str]:
    """The ids a group file defines, recording a problem when it holds not exactly one id named after itself."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        problems.append(IdProblem(group, path.stem, (path,), f"{path}: is not valid YAML: {err}"))
        return []
    keys = [k for k in (data if isinstance(data, dict) else {}) if k != "defaults"]
    if keys != [path.stem]:
        found = ", ".join(map(repr, keys)) or ("nothing (the file is empty)" if data is None else "no id")
        msg = f"{path}: defines {found}; a {group} file must define exactly one id, named after it ({path.stem!r})"
        problems.append(IdProblem(group, str(keys[0]) if len(keys) == 1 else path.stem, (path,), msg))
    return [str(k) for k in keys]


def unique_dirs(dirs: Iterable[Path]) -> List[Path]:
    """`dirs` resolved, first occurrence kept."""
    seen: Dict[Path, None] = {}
    for d in dirs:
        seen.setdefault(Path(d).resolve(), None)
    return list(seen)


def job_loaded() -> Optional[Loaded]:
    """What the running `python -m cai` job loaded (see `loaded`); None outside a Hydra job."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    # hydra.searchpath is a Hydra override, not a task one, and it decides where the group files are found.
    return loaded(list(hydra.overrides.hydra) + list(hydra.overrides.task), hydra.job.config_name)


def loaded(overrides: Sequence[str], config_name: Optional[str] = None) -> Loaded:
    """The constitution files that composing with `overrides` loads, by group (an empty one included)."""
    # From Hydra's defaults list: the composed config has no trace of a file that added nothing.
    from cai.paths import PRIMARY

    options: Loaded = {}
    for default in _defaults_list(list(overrides), config_name or PRIMARY):
        parts = (default.config_path or "").split("/")
        if parts[0] == "constitution" and len(parts) in (2, 3):
            options.setdefault(parts[1] if len(parts) == 3 else "", set()).add(parts[-1])
    return options


def _defaults_list(overrides: List[str], config_name: str) -> list:
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from cai.config import register_schemas
    from cai.paths import conf_dir

    def compute() -> list:
        loader = GlobalHydra.instance().config_loader()
        return loader.compute_defaults_list(config_name, overrides, RunMode.RUN).defaults

    if GlobalHydra.instance().is_initialized():  # inside a Hydra job: its own loader and search path
        return compute()
    register_schemas()  # the primary config's defaults name the run schema
    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        return compute()
