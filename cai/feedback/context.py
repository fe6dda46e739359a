"""The constitution parts a judge reads (its principles and few-shot exemplars), shared by label_preferences,
judge_audit and evaluate so every judge sees the prompts the labels were made with."""
from __future__ import annotations

from typing import Any, Dict

from omegaconf import OmegaConf

from cai.constitution import selected_ids
from cai.errors import CaiError


def labeling_context(cfg, node_cfg) -> Dict[str, Any]:
    """What a labeling judge reads: the selected comparison principles, and the exemplars it uses (keyed)."""
    constitution = cfg.constitution
    comparison = OmegaConf.to_container(constitution.comparison, resolve=True)
    ids = selected_ids(comparison, list(constitution.comparison_select), "constitution.comparison_select")
    out = {"constitution": constitution.name, "principles": {i: comparison[i] for i in ids}}
    return {**out, **fewshot_context(constitution, comparison, node_cfg)}


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
