"""The README card of an export: YAML metadata (huggingface_hub's card data, plus a `cai` block with the
constitution, recipe, lineage, metrics and judge verdicts) and a body a person reads."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List

import yaml

from cai.eval.lineage import walk
from cai.feedback.verdict import judge_verdict
from cai.report.load import NodeView
from cai.report.sections import table

PIPELINE_TAGS = {"reward_model": "text-classification"}


def lineage(node: NodeView) -> List[Dict[str, Any]]:
    """The artifact and its ancestors: node, kind, key, and the model roles and sources each read."""
    out = []
    for path, found in walk([node.path]):
        inputs = found.get("inputs") or {}
        roles = {s: _model_name(i.get("spec") or {}) for s, i in inputs.items() if i.get("model_role")}
        sources = sorted(str(i["source"]) for i in inputs.values() if i.get("source"))
        out.append({"node": found.get("node", path.name), "kind": found.get("kind", "?"), "key": found.get("key", ""),
                    "recipe": found.get("recipe"), "models": roles, "sources": sources, "path": str(path)})
    return out


def constitution(chain: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The constitution name and, per node that read it, the principle ids and texts (from node.yaml)."""
    name, used = None, {}
    for step in chain:
        context = (_yaml(Path(step["path"]) / "node.yaml").get("context") or {})
        if isinstance(context.get("principles"), dict):
            name = name or context.get("constitution")
            used[step["node"]] = {i: p.get("critique") or p.get("text", "") for i, p in context["principles"].items()}
        for axis, principles in (context.get("axes") or {}).items():
            used[f"{step['node']} ({axis})"] = {i: p.get("text", "") for i, p in principles.items()}
            name = name or context.get("constitution")
    return {"name": name, "principles": used}


def verdicts(node: NodeView, chain: List[Dict[str, Any]]) -> Dict[str, str]:
    """{node: verdict line} for this artifact's own judge audit and every labeling ancestor's."""
    out = {}
    for step in chain:
        audit = _json(Path(step["path"]) / "metrics.json").get("audit")
        if isinstance(audit, dict):
            verdict = judge_verdict(audit, step["node"])
            out[step["node"]] = f"{verdict.label} ({verdict.numbers})"
    return out


def write(node: NodeView, out: Path, written: Dict[str, Any], license: str) -> Path:
    """README.md in `out`: metadata, then what it is, how it was made and how to load it."""
    from huggingface_hub import DatasetCard, DatasetCardData, ModelCard, ModelCardData

    chain = lineage(node)
    found, judged = constitution(chain), verdicts(node, chain)
    scalars = {k: v for k, v in node.metrics.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    meta = {"constitution": found["name"], "principles": {n: sorted(p) for n, p in found["principles"].items()},
            "recipe": chain[0].get("recipe"), "node": node.name, "stage": node.kind, "key": node.key,
            "lineage": [{k: s[k] for k in ("node", "kind", "key")} for s in chain], "metrics": scalars,
            "judge_verdicts": judged or "no judge upstream"}
    tags = ["constitutional-ai", "cai", "synthetic"]
    if written["kind"] == "dataset":
        configs = [{"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"}
                                                             for s in written["splits"]]}]
        data = DatasetCardData(license=license, task_categories=["text-generation"], tags=tags, configs=configs,
                               pretty_name=f"cai {node.name} ({found['name'] or node.kind})", cai=meta)
        card = DatasetCard(f"---\n{data.to_yaml()}\n---\n" + body(node, meta, found, judged, written, chain))
    else:
        data = ModelCardData(license=license, library_name="transformers", tags=tags, cai=meta,
                             pipeline_tag=PIPELINE_TAGS.get(node.kind, "text-generation"))
        card = ModelCard(f"---\n{data.to_yaml()}\n---\n" + body(node, meta, found, judged, written, chain))
    card.save(str(out / "README.md"))
    return out / "README.md"


def body(node: NodeView, meta: Dict[str, Any], found: Dict[str, Any], judged: Dict[str, str],
         written: Dict[str, Any], chain: List[Dict[str, Any]]) -> str:
    """The card's markdown body."""
    what = (f"{sum(written['splits'].values())} rows in splits " + ", ".join(f"`{s}` ({n})" for s, n in
            written["splits"].items())) if written["kind"] == "dataset" else "model weights and tokenizer"
    lines = [f"# cai {node.kind}: `{node.name}`", "", f"Made by cai (Constitutional AI, Bai et al. 2022) with recipe "
             f"`{meta['recipe']}`, node `{node.name}`, key `{node.key}`: {what}.", "",
             "## Can its labels be trusted?", ""]
    lines += [f"- `{n}`: {v}" for n, v in judged.items()] or ["No AI-feedback judge is upstream of this artifact."]
    lines += ["", f"## Constitution: `{found['name']}`", ""]
    for user, principles in found["principles"].items():
        lines += [f"**{user}**", ""] + table(("principle", "text"), sorted(principles.items())) + [""]
    lines += ["## Lineage", ""] + table(("node", "stage", "key", "models", "sources"), [
        (s["node"], s["kind"], s["key"], ", ".join(f"{k}={v}" for k, v in s["models"].items()), ", ".join(s["sources"]))
        for s in chain]) + [""]
    lines += ["## Metrics", ""] + table(("metric", "value"), sorted(meta["metrics"].items())) + [""]
    if written["kind"] == "dataset":
        lines += ["## Load it", "", "```python", "from datasets import load_dataset", "",
                  'data = load_dataset("ORG/NAME")  # or a local copy of this folder', "```", ""]
    return "\n".join(lines)


def _model_name(spec: Dict[str, Any]) -> str:
    return str(spec.get("id") or spec.get("file") or spec.get("path") or spec.get("source") or "?")


def _yaml(path: Path) -> Dict[str, Any]:
    try:
        found = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        return {}
    return found if isinstance(found, dict) else {}


def _json(path: Path) -> Dict[str, Any]:
    try:
        found = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
