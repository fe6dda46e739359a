"""Prompt sources: shipped sets (cai://redteam, cai://helpful, cai://overrefusal, cai://judge_audit), file://
(.jsonl/.txt/.parquet) and hf:// datasets."""
from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple
from urllib.parse import parse_qsl, urlsplit

from cai.errors import CaiError, first_line

SCHEMES = ("cai://", "file://", "hf://")
PACKAGED = Path(__file__).resolve().parent / "data"
OPTIONS = ("field", "format", "split", "config", "revision", "data_dir", "label")
"""URI options; `label` (harmful or harmless) labels every row of an over-refusal set that has no label column."""


@dataclass
class Source:
    """A parsed source URI: scheme, location and query options (field, split, config, revision, format)."""

    uri: str
    scheme: str
    location: str
    options: Dict[str, str] = field(default_factory=dict)


def is_uri(ref: str) -> bool:
    """Whether a node input names an external source rather than a node or model role."""
    return ref.startswith(SCHEMES)


def parse_uri(uri: str) -> Source:
    """Split `scheme://location?key=value&...`."""
    parts = urlsplit(uri)
    location = parts.netloc + parts.path
    if not location:
        raise CaiError(f"source {uri!r} names no location")
    options = dict(parse_qsl(parts.query))
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise CaiError(f"source {uri!r}: unknown option {unknown[0]!r}; known: {', '.join(OPTIONS)}")
    return Source(uri, parts.scheme, location, options)


def local_path(src: Source) -> Path:
    """The file behind a cai:// or file:// source, checked to exist."""
    path = PACKAGED / f"{src.location}.jsonl" if src.scheme == "cai" else Path(src.location).expanduser()
    if not path.is_file():
        shipped = ", ".join(f"cai://{p.stem}" for p in sorted(PACKAGED.glob("*.jsonl")))
        raise CaiError(f"source {src.uri!r}: no file {path}" + (f"; shipped sets: {shipped}" if src.scheme == "cai" else ""))
    return path


def source_id(uri: str) -> str:
    """What identifies a source's content in node keys: the hf:// URI itself; for a file, its name, options and
    content hash (not its folder: the same file read from another checkout or $CAI_SHARED keys the same)."""
    src = parse_uri(uri)
    if src.scheme == "hf":
        return uri
    path = local_path(src)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    if src.scheme == "cai":
        return f"{uri}#sha256={digest}"
    query = "&".join(f"{k}={v}" for k, v in sorted(src.options.items()))
    return f"file://{path.name}{'?' + query if query else ''}#sha256={digest}"


def read_rows(src: Source) -> List[Any]:
    """Raw rows of a source: dicts for jsonl/parquet/hf, strings for txt."""
    if src.scheme == "hf":
        return _read_hf(src)
    path = local_path(src)
    if path.suffix == ".parquet":
        return _read_parquet(path)
    if path.suffix not in (".txt", ".jsonl"):
        raise CaiError(f"source {src.uri!r}: unsupported file type {path.suffix!r} (use .jsonl, .txt or .parquet)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise CaiError(f"{path}: not UTF-8 text (byte {err.start} is {err.object[err.start]:#04x})") from None
    return lines if path.suffix == ".txt" else [_json_line(line, path, n) for n, line in enumerate(lines, 1)]


def _read_parquet(path: Path) -> List[Any]:
    import pyarrow
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pyarrow.ArrowException, OSError) as err:
        raise CaiError(f"{path}: not a readable Parquet file ({first_line(err)})") from None


def _json_line(line: str, path: Path, number: int) -> Any:
    if not line.strip():
        return None  # blank line: skipped and counted, like any unusable row
    try:
        return json.loads(line)
    except json.JSONDecodeError as err:
        raise CaiError(f"{path}:{number}: not valid JSON ({err.msg})") from None


def _read_hf(src: Source) -> List[Any]:
    from datasets import load_dataset

    opts = src.options
    try:
        dataset = load_dataset(src.location, opts.get("config"), split=opts.get("split", "train"),
                               revision=opts.get("revision"), data_dir=opts.get("data_dir"))
    except Exception as err:  # datasets raises many types (offline, not found, bad split); all mean "cannot read"
        reason = f"{type(err).__name__}: {first_line(err)}"
        raise CaiError(f"source {src.uri!r}: could not load the dataset ({reason})") from None
    return list(dataset)


def first_human_turn(transcript: str) -> str:
    """The first `Human:` turn of an hh-rlhf style transcript (format=hh)."""
    text = transcript.split("Human:", 1)[-1]
    return text.split("\n\nAssistant:", 1)[0].strip()


def load_prompts(uri: str, limit: int | None = None, shuffle: bool = False, seed: int = 0,
                 max_chars: int = 2000) -> Tuple[List[Dict[str, str]], Dict[str, int]]:
    """Prompts as `{id, prompt, category}`; blank, duplicate, non-string and over-long rows are counted, not fatal."""
    src = parse_uri(uri)
    field_name = src.options.get("field", "prompt")
    stats = {"rows": 0, "blank": 0, "duplicate": 0, "not_text": 0, "truncated": 0}
    prompts, seen = [], set()
    for index, row in enumerate(read_rows(src)):
        stats["rows"] += 1
        text = row if isinstance(row, str) or row is None else row.get(field_name) if isinstance(row, dict) else None
        if text is not None and not isinstance(text, str):
            stats["not_text"] += 1
            continue
        if src.options.get("format") == "hh" and text:
            text = first_human_turn(text)
        if not text or not text.strip():
            stats["blank"] += 1
            continue
        text = text.strip()
        if len(text) > max_chars:
            text, stats["truncated"] = text[:max_chars], stats["truncated"] + 1
        if text in seen:
            stats["duplicate"] += 1
            continue
        seen.add(text)
        prompts.append(_prompt_record(row, text, index))
    if not prompts:
        raise CaiError(f"source {uri!r}: no usable prompts in {stats['rows']} rows (field {field_name!r})")
    if shuffle:
        random.Random(seed).shuffle(prompts)
    stats["used"] = len(prompts[:limit] if limit else prompts)
    return (prompts[:limit] if limit else prompts), stats


def _prompt_record(row: Any, text: str, index: int) -> Dict[str, str]:
    meta = row if isinstance(row, dict) else {}
    pid = meta.get("id") if isinstance(meta.get("id"), str) else hashlib.sha1(text.encode()).hexdigest()[:12]
    return {"id": pid, "prompt": text, "category": str(meta.get("category", ""))}
