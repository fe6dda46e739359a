"""Does the evaluation grade itself? The eval judge compared with the judges that labeled the compared models'
training data (the label_preferences ancestors in the store's lineage): the same model key means the teacher
grades its own pupils, and the report says so."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional

from cai.eval.lineage import walk
from cai.stage_api import Input

LABELING_KINDS = ("label_preferences",)


def identity(found: Dict[str, Any]) -> Optional[str]:
    """What names a judge in lineage.json's inputs: a model role's key, else a model artifact's path."""
    if found.get("key"):
        return str(found["key"])
    if found.get("spec"):
        from omegaconf import OmegaConf

        from cai.keys import model_key  # lineage written before keys were recorded: derive it from the spec
        from cai.registry import get_engine

        spec = OmegaConf.create(found["spec"])
        return model_key(spec, get_engine(spec.get("engine", "hf")).options_not_in_key)
    return str(found["path"]) if found.get("path") else None


def of_input(judge: Input) -> Optional[str]:
    """The identity of the eval node's own judge input."""
    return judge.key if judge.kind == "model" else str(judge.path) if judge.path else None


def labeling_judges(artifacts: Iterable[Path]) -> List[Dict[str, Any]]:
    """Every labeling ancestor of the artifacts: its node name, judge reference and judge identity."""
    out = []
    for path, lineage in walk(artifacts):
        judge = (lineage.get("inputs") or {}).get("judge")
        if lineage.get("kind") in LABELING_KINDS and isinstance(judge, dict):
            out.append({"node": lineage.get("node", path.name), "judge": judge.get("model_role") or
                        judge.get("node"), "identity": identity(judge)})
    return out


def check(reference: str, judge: Input, artifacts: Iterable[Path]) -> Dict[str, Any]:
    """metrics.json `eval_judge`: which judge graded, which judges labeled, and the labeling nodes it repeats."""
    own = of_input(judge)
    labelers = labeling_judges(artifacts)
    same = sorted({j["node"] for j in labelers if own is not None and j["identity"] == own})
    return {"reference": reference, "resolved": ("models." if judge.kind == "model" else "") + judge.target,
            "labeling_judges": labelers, "same_as_labeling": same,
            "independent": None if own is None else not same}
