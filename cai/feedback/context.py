"""The constitution parts a judge reads (its few-shot exemplars), shared by label_preferences and evaluate so the
evaluation's judge sees the prompts the labels were made with."""
from __future__ import annotations

from typing import Any, Dict

from omegaconf import OmegaConf

from cai.errors import CaiError


def fewshot_context(constitution, comparison: Dict[str, Any], node_cfg) -> Dict[str, Any]:
    """The judge's exemplars (`node_cfg.fewshot`): CoT ones for method=cot, else labeling ones with the text of
    every principle they name (shared with evaluate, so its judge sees the prompts the labels were made with)."""
    out: Dict[str, Any] = {}
    if node_cfg.fewshot and node_cfg.method == "cot":
        out["cot"] = OmegaConf.to_container(constitution.fewshot.cot, resolve=True)
    elif node_cfg.fewshot:
        out["labeling"] = OmegaConf.to_container(constitution.fewshot.labeling, resolve=True)
        used = {e["principle"] for e in out["labeling"].values() if e.get("principle")}
        unknown = sorted(used - set(comparison))
        if unknown:
            raise CaiError(f"constitution.fewshot.labeling: principle(s) {unknown} are not comparison principles; "
                           f"available: {sorted(comparison)}")
        out["exemplar_principles"] = {i: comparison[i]["text"] for i in sorted(used)}
    return out
