"""Convert upstream constitution files (Anthropic's prompt JSON, llm-swarm JSON) into our one-file-per-id YAML layout.

The output is a config dir: add it with `hydra.searchpath=[file://OUT]` and select `constitution=NAME`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import yaml

from cai.constitution.import_check import check_library, output_root
from cai.errors import CaiError

Chat = List[Dict[str, str]]
ITEM_GROUPS = ("principle", "comparison", "exemplar", "label_exemplar", "cot_exemplar")
# Reserved: these names are the constitution's group folders, so a constitution may not take them.
GROUP_DIRS = ITEM_GROUPS + ("fewshot",)
# Anthropic transcript speakers -> chat roles: critique and revision requests are user turns.
_ROLES = {"Human": "user", "Assistant": "assistant", "CritiqueRequest": "user", "Critique": "assistant",
          "RevisionRequest": "user", "Revision": "assistant", "H": "user", "A": "assistant"}


@dataclass
class Library:
    """What one import produced: items per group folder, keyed by id, each a dict of fields."""

    name: str
    source: str
    """Short origin, for the constitution file's header line."""
    description: str
    groups: Dict[str, Dict[str, dict]] = field(default_factory=lambda: {g: {} for g in ITEM_GROUPS})
    origins: Dict[Tuple[str, str], List[Tuple[str, str]]] = field(default_factory=dict)
    """(group, id) -> every (input file, entry) that produced it: more than one means ids collided."""
    reading: str = ""
    """The input file being converted, for `origins`."""

    def add(self, group: str, id_: str, item: dict, entry: str) -> None:
        """Put `item` under `id_` in `group`, remembering which entry of the file being read it came from."""
        self.groups[group][id_] = item
        self.origins.setdefault((group, id_), []).append((self.reading, entry))


def parse_transcript(text: str, speakers: Sequence[str]) -> Chat:
    """Split a `\\n\\nSpeaker: text` transcript into chat messages, dropping an empty trailing turn."""
    pattern = r"(?:^|\n\n)(" + "|".join(sorted(map(re.escape, speakers), key=len, reverse=True)) + r"):"
    parts = re.split(pattern, text.strip("\n"))
    if parts[0].strip():
        raise CaiError(f"transcript does not start with one of {list(speakers)}: {parts[0][:60]!r}")
    chat = [{"role": _ROLES[s], "content": c.strip()} for s, c in zip(parts[1::2], parts[2::2])]
    return chat[:-1] if chat and not chat[-1]["content"] else chat


def _strip_tag(text: str, lead: str, trail: str) -> str:
    """`\\n\\nLead: body\\n\\nTrail:` -> body."""
    text = re.sub(rf"^\s*{lead}:\s*", "", text)
    return re.sub(rf"\s*{trail}:\s*$", "", text).strip()


def _anthropic_principles(data: dict, lib: Library) -> None:
    for upstream, entry in data.items():
        key = re.sub(r"\W", "_", str(upstream))
        family = re.sub(r"_*\d+$", "", key)  # harmful0 -> tag "harmful"
        revision = _strip_tag(entry["edit_request"], "RevisionRequest", "Revision")
        for j, request in enumerate(entry["prompt"]):
            lib.add("principle", f"{lib.name}_{key}" + (f"_{j}" if j else ""), {
                "critique": _strip_tag(request, "CritiqueRequest", "Critique"), "revision": revision,
                "tags": [family] if family else []}, f"entry {upstream!r} prompt[{j}]")


def _anthropic_exemplars(data: List[str], lib: Library) -> None:
    speakers = ["Human", "Assistant", "CritiqueRequest", "Critique", "RevisionRequest", "Revision"]
    for i, text in enumerate(data):
        lib.add("exemplar", f"{lib.name}_cr{i}", {"messages": parse_transcript(text, speakers)}, f"item [{i}]")


def _anthropic_comparisons(data: List[str], lib: Library) -> None:
    # The labeler adds its own options list, so the trailing "Options:" cue is dropped.
    for i, text in enumerate(data):
        lib.add("comparison", f"{lib.name}_cmp{i}", {"text": re.sub(r"\s*Options:\s*$", "", text).strip(),
                                                    "tags": []}, f"item [{i}]")


def _anthropic_labeling(data: List[dict], lib: Library) -> None:
    for i, entry in enumerate(data):
        conversation = parse_transcript(entry["prompt"], ["Human", "Assistant"])
        pairs = [(c, w) for c in entry["corrects"] for w in entry["incorrects"]]  # corrects are the better ones
        for j, (better, worse) in enumerate(pairs):
            id_ = f"{lib.name}_lab{i}" + (f"_{j}" if j else "")
            lib.add("label_exemplar", id_, {"conversation": conversation, "better": better.strip(),
                                            "worse": worse.strip()}, f"item [{i}] (corrects x incorrects pair {j})")


_COT = re.compile(r"^(?P<head>.*?)\n\n(?P<conv>[HA]:.*?)\n\n(?P<slot>[^\n]*\{\}[^\n]*)\n"
                  r"\s*\(A\)\s*\[\[\[(?P<a>.*?)\]\]\]\s*\(B\)\s*\[\[\[(?P<b>.*?)\]\]\]\s*"
                  r"Assistant:(?P<reasoning>.*)\n\nHuman:\s*(?P<tail>[^\n]*)\s*$", re.S)


def _anthropic_cot(data: List[dict], lib: Library) -> None:
    for i, entry in enumerate(data):
        match = _COT.match(entry["prompt"].strip("\n"))
        answer = re.search(r"\(([AB])\)\s*$", match.group("tail")) if match else None
        if not match or not answer:
            raise CaiError(f"chain-of-thought exemplar {i}: unexpected layout: {entry['prompt'][:80]!r}")
        lib.add("cot_exemplar", f"{lib.name}_cot{i}", {
            "conversation": parse_transcript(match.group("conv"), ["H", "A"]),
            "response_a": match.group("a").strip(), "response_b": match.group("b").strip(),
            "reasoning": match.group("reasoning").strip(), "answer": answer.group(1),
            "principle_slot": match.group("slot").strip().replace("{}", "{principle}")}, f"item [{i}]")


def _anthropic_kind(path: Path, data: Any) -> Optional[Callable[[Any, Library], None]]:
    """Which Anthropic prompt file this is, by its name, else by its content."""
    by_name = {"CritiqueRevisionInstructions": _anthropic_principles,
               "CritiqueRevisionFewShotPrompts": _anthropic_exemplars,
               "RLMadisonInstructions": _anthropic_comparisons,
               "RLMadisonFewShotPrompts": _anthropic_labeling,
               "RLMadisonPrecogFewShotPrompts": _anthropic_cot}
    if path.stem in by_name:
        return by_name[path.stem]
    first = next(iter(data.values() if isinstance(data, dict) else data), None)
    if isinstance(data, dict) and isinstance(first, dict) and "edit_request" in first:
        return _anthropic_principles
    if isinstance(first, dict) and "corrects" in first:
        return _anthropic_labeling
    if isinstance(first, dict) and "{}" in str(first.get("prompt")):
        return _anthropic_cot
    if isinstance(first, str):
        return _anthropic_exemplars if "Critique:" in first else _anthropic_comparisons
    return None


def import_anthropic(files: Sequence[Path], name: str = "anthropic") -> Library:
    """Read Anthropic's ConstitutionalHarmlessnessPaper prompt files (any of the five, given together)."""
    lib = Library(name, "Anthropic's ConstitutionalHarmlessnessPaper prompts", "Imported from Anthropic's "
                  "ConstitutionalHarmlessnessPaper prompts: " + ", ".join(Path(f).name for f in files))
    for path in map(Path, files):
        data = _read_json(path)
        convert = _anthropic_kind(path, data)
        lib.reading = str(path)
        if convert is None:
            raise CaiError(f"{path}: not one of Anthropic's CritiqueRevision*/RLMadison* prompt files")
        try:
            convert(data, lib)
        except (CaiError, KeyError, TypeError, AttributeError) as err:
            raise CaiError(f"{path}: unexpected layout for {convert.__name__[1:]}: {err}") from err
    return lib


def import_llm_swarm(files: Sequence[Path], name: str = "llm_swarm") -> Library:
    """Read an llm-swarm constitution: `{"constitutions": [{critic, revision}], "system_chat": [[messages]]}`."""
    if len(files) != 1:
        raise CaiError(f"--format llm-swarm takes one file, got {len(files)}")
    path = Path(files[0])
    data = _read_json(path)
    if not isinstance(data, dict) or "constitutions" not in data:
        raise CaiError(f"{path}: not an llm-swarm constitution (no 'constitutions' list)")
    lib = Library(name, f"llm-swarm {path.name}", f"Imported from the llm-swarm constitution {path.name}",
                  reading=str(path))
    try:
        for i, pair in enumerate(data["constitutions"]):
            principle = {"critique": pair["critic"].strip(), "revision": pair["revision"].strip(), "tags": []}
            lib.add("principle", f"{name}_p{i}", principle, f"constitutions[{i}]")
        for i, chat in enumerate(data.get("system_chat", [])):
            messages = [{"role": m["role"], "content": m["content"].strip()} for m in chat]
            lib.add("exemplar", f"{name}_cr{i}", {"messages": messages}, f"system_chat[{i}]")
    except (KeyError, TypeError, AttributeError) as err:
        raise CaiError(f"{path}: unexpected llm-swarm layout: missing or mistyped {err}") from err
    return lib


IMPORTERS = {"anthropic": import_anthropic, "llm-swarm": import_llm_swarm}


def run_import(fmt: str, files: Sequence[Path], out: Path, name: Optional[str] = None) -> Path:
    """Convert `files` in format `fmt` and write them under `out`; returns the written constitution file."""
    if fmt not in IMPORTERS:
        raise CaiError(f"unknown format {fmt!r}; available: {', '.join(IMPORTERS)}")
    name = name or fmt.replace("-", "_")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name in GROUP_DIRS:
        raise CaiError(f"--name {name!r}: use letters, digits and _, and none of {', '.join(GROUP_DIRS)}")
    for path in map(Path, files):
        if not path.is_file():
            raise CaiError(f"{path}: no such file")
    lib = IMPORTERS[fmt](files, name=name)
    check_library(lib, files)  # before writing: an invalid import leaves nothing half-written
    return write_library(lib, Path(out))


def write_library(lib: Library, out: Path) -> Path:
    """Write one YAML per item, the fewshot set and the constitution file under `out/constitution/`."""
    root = output_root(out)
    run = f"python -m cai constitution={lib.name} 'hydra.searchpath=[file://{out.resolve()}]'"
    what = {"principle": "critique/revision principle", "comparison": "comparison principle",
            "exemplar": "critique/revision few-shot exemplar", "label_exemplar": "labeling few-shot exemplar",
            "cot_exemplar": "chain-of-thought labeling exemplar"}
    for group, items in lib.groups.items():
        for id_, item in items.items():
            _dump(root / group / f"{id_}.yaml", f"{what[group]} {id_} ({lib.name})", run, {id_: _escape(item)})
    fewshot = [(f"/constitution/{g}@{k}", list(lib.groups[g])) for g, k in
               (("exemplar", "critique_revision"), ("label_exemplar", "labeling"), ("cot_exemplar", "cot"))]
    fewshot = [{key: ids} for key, ids in fewshot if ids]
    if fewshot:
        _dump(root / "fewshot" / f"{lib.name}.yaml", f"few-shot exemplars of {lib.name}", run,
              {"defaults": fewshot + ["_self_"]})
    defaults = [{f"{g}@{k}": list(lib.groups[g])} for g, k in
                (("principle", "critique_revision"), ("comparison", "comparison")) if lib.groups[g]]
    defaults += [{"fewshot": lib.name}] if fewshot else []
    path = root / f"{lib.name}.yaml"
    _dump(path, f"constitution {lib.name}, imported from {lib.source}", run,
          {"defaults": defaults + ["_self_"], "name": lib.name, "description": _escape(lib.description)})
    return path


def _dump(path: Path, what: str, run: str, data: dict) -> None:
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {what}. Run: {run}\n{text}", encoding="utf-8")
    except OSError as err:
        raise CaiError(f"{path}: cannot write: {err.strerror or err}") from err


def _escape(value: Any) -> Any:
    # OmegaConf would read "${...}" in imported text as an interpolation; "\${" keeps it literal.
    if isinstance(value, str):
        return value.replace("${", "\\${")
    if isinstance(value, list):
        return [_escape(v) for v in value]
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    return value


def _read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CaiError(f"{path}: cannot read JSON: {err}") from err
