"""Plan-time checking of a stage's pass-through `trainer:` dict: every key must be a field of the TRL config class
(SFTConfig, DPOConfig) with a value of its type, and the config object must build; errors name
`pipeline.<node>.trainer.<key>` before any model loads."""
from __future__ import annotations

import dataclasses
import difflib
import enum
import types
import typing
from typing import Any, Dict, Mapping

from cai.errors import CaiError

# Keys the stage owns: where checkpoints go (for resume) and the checkpointing switch (a stage field).
RESERVED = {
    "output_dir": "the stage writes checkpoints to <workdir>/checkpoints (so a rerun resumes)",
    "resume_from_checkpoint": "a rerun resumes from the last checkpoint by itself",
    "gradient_checkpointing": "set pipeline.<node>.gradient_checkpointing instead",
    "activation_checkpointing": "set pipeline.<node>.gradient_checkpointing instead",
}


def check_keys(config_cls: type, trainer: Mapping[str, Any], where: str) -> None:
    """Unknown, reserved or mistyped keys fail, naming `where.<key>` and the expected type."""
    hints = typing.get_type_hints(config_cls)
    known = {f.name for f in dataclasses.fields(config_cls) if f.init}
    for key, value in trainer.items():
        if key in RESERVED:
            raise CaiError(f"{where}.{key}: not settable here; {RESERVED[key].replace('<node>', _node(where))}")
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise CaiError(f"{where}.{key}: not a {config_cls.__name__} argument{hint}")
        if not conforms(value, hints[key]):
            raise CaiError(f"{where}.{key}: expected {_type_name(hints[key])}, got {value!r}")


def build(config_cls: type, trainer: Mapping[str, Any], where: str, defaults: Dict[str, Any],
          fixed: Dict[str, Any]) -> Any:
    """Check `trainer`, then build `config_cls(**defaults, **trainer, **fixed)`; its own validation errors are
    reported against `where` (they can involve several keys)."""
    check_keys(config_cls, trainer, where)
    try:
        args = config_cls(**{**defaults, **trainer, **fixed})
    except (ValueError, TypeError, NotImplementedError) as err:
        raise CaiError(f"{where}: {config_cls.__name__} rejected these arguments: {err}") from None
    check_ranges(args, where)
    return args


# (argument, rule, test) for values the config class accepts but the Trainer rejects late or misreads
RANGES = (("per_device_train_batch_size", ">= 1", lambda v: v >= 1),
          ("per_device_eval_batch_size", ">= 1", lambda v: v >= 1),
          ("gradient_accumulation_steps", ">= 1", lambda v: v >= 1),
          ("learning_rate", ">= 0", lambda v: v >= 0),
          ("num_train_epochs", "> 0", lambda v: v > 0),
          ("max_steps", ">= 1, or -1 for num_train_epochs", lambda v: v == -1 or v >= 1))


def check_ranges(args: Any, where: str) -> None:
    """Out-of-range values that would fail only once training starts (or, for max_steps=0, run one step)."""
    for name, rule, ok in RANGES:
        value = getattr(args, name, None)
        if value is not None and not ok(value):
            raise CaiError(f"{where}.{name}: must be {rule}, got {value}")


def conforms(value: Any, hint: Any) -> bool:
    """Whether a YAML/CLI value fits a dataclass field type (lenient for types YAML cannot express)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
        if enums and isinstance(value, str):  # `SchedulerType | str`: the string must still name a member
            return any(conforms(value, e) for e in enums)
        return any(conforms(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return value in args
    if origin in (list, tuple):
        # HF configs wrap a single value into a list themselves (e.g. DPOConfig.loss_type)
        items = value if isinstance(value, (list, tuple)) else [value]
        return all(conforms(v, args[0]) for v in items) if args else True
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return isinstance(value, hint) or value in {member.value for member in hint}
    return _scalar(value, hint)


def _scalar(value: Any, hint: Any) -> bool:
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return True  # classes YAML cannot spell (callables, objects): the config's own validation decides


def _type_name(hint: Any) -> str:
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return f"one of {', '.join(repr(m.value) for m in hint)}"
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        enums = [a for a in typing.get_args(hint) if isinstance(a, type) and issubclass(a, enum.Enum)]
        if enums:
            return _type_name(enums[0])
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))


def _node(where: str) -> str:
    return where.split(".")[1] if where.count(".") >= 1 else where
