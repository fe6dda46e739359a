"""`python -m cai.constitution show NAME`: compose, validate and print a constitution as the models will see it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cai.constitution.files import loaded
from cai.constitution.render import render_chat
from cai.constitution.validate import validate_constitution
from cai.errors import CaiError

SHOW_MODEL = "models.show"  # where --model mounts its spec, beside the recipe's own models


def show_overrides(name: str, config_dir: Optional[Path] = None, model: Optional[str] = None) -> List[str]:
    """The overrides selecting constitution NAME (and model MODEL mounted at models.show)."""
    overrides = [f"constitution={name}"]
    if config_dir is not None:
        if not Path(config_dir).is_dir():
            raise CaiError(f"--config-dir: {str(config_dir)!r} is not a directory")
        overrides.append(f"hydra.searchpath=[file://{Path(config_dir).resolve()}]")
    if model:
        overrides.append(f"+model@{SHOW_MODEL}={model}")
    return overrides


def compose(name: str, config_dir: Optional[Path] = None, model: Optional[str] = None) -> DictConfig:
    """The run config with constitution NAME (and model MODEL mounted at models.show) selected."""
    from cai.config import compose_run

    try:
        return compose_run(show_overrides(name, config_dir, model))
    except CaiError:
        raise
    except Exception as err:  # Hydra's own errors (unknown option, schema mismatch) carry a clear message
        raise CaiError(f"cannot compose constitution={name}: {err}") from err


def search_dirs(config_dir: Optional[Path]) -> List[Path]:
    """Where the constitution's files live: the user's config dir first (as given), then the package's conf/."""
    from cai.paths import conf_dir

    return ([Path(config_dir)] if config_dir is not None else []) + [conf_dir()]


def principles_table(principles: Dict[str, Any], select: List[str]) -> Table:
    """Critique/revision principles: id, weight, tags, critique and revision requests."""
    table = Table(title=f"critique/revision principles ({_selection(principles, select)})", show_lines=True)
    for column in ("id", "weight", "tags", "critique", "revision"):
        table.add_column(column, overflow="fold", no_wrap=column in ("id", "weight"))
    for id_, p in principles.items():
        table.add_row(*map(Text, (_mark(id_, select), f"{p.get('weight', 1.0):g}", ", ".join(p.get("tags") or []),
                                  p["critique"], p["revision"])))
    return table


def comparison_table(principles: Dict[str, Any], select: List[str]) -> Table:
    """Comparison principles for the feedback model: id, weight, tags, text."""
    table = Table(title=f"comparison principles ({_selection(principles, select)})", show_lines=True)
    for column in ("id", "weight", "tags", "text"):
        table.add_column(column, overflow="fold", no_wrap=column in ("id", "weight"))
    for id_, p in principles.items():
        table.add_row(*map(Text, (_mark(id_, select), f"{p.get('weight', 1.0):g}", ", ".join(p.get("tags") or []),
                                  p["text"])))
    return table


def exemplar_chat(fewshot: Dict[str, Any], exemplar: Optional[str], system_prompt: Optional[str]) -> tuple:
    """(id, chat) of one critique/revision exemplar (the first unless named), system prompt first as the engine does."""
    exemplars = fewshot.get("critique_revision") or {}
    if exemplar is not None and exemplar not in exemplars:
        raise CaiError(f"--exemplar {exemplar!r}: no such critique/revision exemplar; available: {sorted(exemplars)}")
    if not exemplars:
        return None, []
    id_ = exemplar or next(iter(exemplars))
    chat = [{"role": m["role"], "content": m["content"]} for m in exemplars[id_]["messages"]]
    if system_prompt and chat[0]["role"] != "system":
        chat = [{"role": "system", "content": system_prompt}] + chat
    return id_, chat


def show(name: str, model: Optional[str] = None, config_dir: Optional[Path] = None,
         exemplar: Optional[str] = None, console: Optional[Console] = None) -> None:
    """Compose constitution NAME, validate it, and print its principles and one exemplar as the model sees it."""
    console = console or Console()
    cfg = compose(name, config_dir, model)
    validate_constitution(cfg.constitution, search_dirs(config_dir), loaded(show_overrides(name, config_dir, model)))
    data = OmegaConf.to_container(cfg.constitution, resolve=True)
    spec = cfg.models[SHOW_MODEL.split(".")[1]] if model else None
    fewshot = data["fewshot"]
    id_, chat = exemplar_chat(fewshot, exemplar, spec.system_prompt if spec is not None else None)
    console.print(Text(f"constitution {data['name']}: {data['description']}".rstrip(": ")))
    console.print(principles_table(data["critique_revision"], data["select"]))
    console.print(comparison_table(data["comparison"], data["comparison_select"]))
    console.print(Text(f"few-shot exemplars: {len(fewshot['critique_revision'])} critique/revision, "
                       f"{len(fewshot['labeling'])} labeling, {len(fewshot['cot'])} chain-of-thought"))
    if id_ is None:
        console.print(Text("no critique/revision exemplars to render"))
        return
    tokenizer = _tokenizer(spec, cfg.home) if spec is not None else None
    templated = getattr(tokenizer, "chat_template", None)
    how = f"model {model}'s chat template" if templated else "a Human:/Assistant: transcript"
    # Printed raw between rules, soft-wrapped: a panel would re-wrap lines and hide the exact whitespace.
    console.rule(Text(f"exemplar {id_}, exactly as {how} renders it"), align="left")
    console.print(Text(render_chat(chat, tokenizer, add_generation_prompt=False)), soft_wrap=True)
    console.rule()


def _tokenizer(spec: DictConfig, home: str) -> Any:
    from cai.models import load_tokenizer  # lazily: it imports transformers

    return load_tokenizer(spec, Path(home))


def _selection(principles: Dict[str, Any], select: List[str]) -> str:
    return f"{len(select)} of {len(principles)} selected, marked *" if select else f"{len(principles)}, all selected"


def _mark(id_: str, select: List[str]) -> str:
    return f"{id_} *" if select and id_ in select else id_
