"""The judging switches every node that labels pairs with a feedback model exposes (label_preferences, judge_audit):
declared once, so an audit with a labeling node's switches asks the judge exactly as that node does."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from cai.errors import CaiError
from cai.feedback.scorer import check_choice_config
from cai.schema import Sampling

DEBIAS = ("swap", "none")


@dataclass
class JudgeSwitches:
    """Fields of a judging node (Bai et al. 2022, sec. 4.1), each its own switch so it can be ablated."""

    method: str = "logprob"
    """logprob: option probabilities; cot: reasoning after "Let's think step by step:", then the answer scored."""
    ensemble: int = 4
    """Principles sampled per comparison (without replacement while they last); probabilities averaged (the paper
    ensembles over 16; 4 keeps most of the gain at a quarter of the cost)."""
    debias: str = "swap"
    """swap: score both A/B orders and average (order agreement measured); none: one order."""
    format: str = "auto"
    """auto (chat when the judge has a chat template), raw (the paper's plain text), chat. CoT always uses chats."""
    fewshot: bool = True
    """Labeling exemplars (method=logprob) or CoT exemplars (method=cot) from the constitution, before the question."""
    clamp: Optional[bool] = None
    """Clamp p into [clamp_low, clamp_high]; null: only with method=cot (section 4.1)."""
    clamp_low: float = 0.4
    clamp_high: float = 0.6
    sampling: Sampling = field(default_factory=Sampling)
    """Decoding of the CoT reasoning."""


def check_switches(node_cfg, where: str) -> None:
    """Plan-time checks of the judging switches, naming the key."""
    check_choice_config(node_cfg, where)
    if node_cfg.debias not in DEBIAS:
        raise CaiError(f"{where}.debias: {node_cfg.debias!r} unknown; available: {', '.join(DEBIAS)}")
    if node_cfg.ensemble < 1:
        raise CaiError(f"{where}.ensemble: must be >= 1, got {node_cfg.ensemble}")
    if not 0.0 <= node_cfg.clamp_low <= 0.5 <= node_cfg.clamp_high <= 1.0:
        raise CaiError(f"{where}.clamp_low/clamp_high: need 0 <= low <= 0.5 <= high <= 1, got "
                       f"{node_cfg.clamp_low}, {node_cfg.clamp_high}")
