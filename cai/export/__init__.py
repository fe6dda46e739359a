"""Results that leave the machine: `python -m cai.export RUN_DIR NODE -o DIR` writes a Hub-ready folder for one
node's artifact, the data (Parquet per split) or the weights, with a README card whose YAML metadata carries the
license, the task, the constitution and its principles, the recipe, the lineage, the metrics and the judge
verdict; `--push-to-hub ORG/NAME` uploads that folder with huggingface_hub.

SL-CAI data gets the split names of HuggingFaceH4/cai-conversation-harmless (train_sft, test_sft, train_prefs,
test_prefs) with its columns, so alignment-handbook's dataset mixer reads it unchanged; preference labels get
train_prefs / test_prefs in TRL's conversational preference format; other data one `train` split.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Dict

from cai.errors import CaiError
from cai.export import card, data
from cai.report.load import NodeView, load_run


def find_node(run_dir: Path, name: str) -> NodeView:
    """The run's node `name`, computed; an unknown or missing one names what there is."""
    run = load_run(Path(run_dir))
    nodes = {n.name: n for n in run.nodes}
    if name not in nodes:
        raise CaiError(f"{run_dir}: no node {name!r}; nodes: {', '.join(nodes)}")
    if nodes[name].path is None:
        raise CaiError(f"{run_dir}: node {name!r} has no artifact (not computed in this run)")
    return nodes[name]


def export(run_dir: Path, name: str, out: Path, license: str = "apache-2.0",
           test_fraction: float = 0.1) -> Dict[str, Any]:
    """Write the folder; returns what was written (`kind`: dataset or model, `splits` or `files`)."""
    node = find_node(run_dir, name)
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CaiError(f"-o {out}: exists and is not an empty folder; give a new one")
    if not 0.0 <= test_fraction < 1.0:
        raise CaiError(f"--test-fraction: must be in [0, 1), got {test_fraction}")
    model_dir = node.path / "model"
    out.mkdir(parents=True, exist_ok=True)
    try:
        if model_dir.is_dir():
            # training_args.bin is a pickle of TRL's arguments: the Hub flags pickles, and the card holds the config
            shutil.copytree(model_dir, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("training_args.bin"))
            written = {"kind": "model", "files": sorted(p.name for p in out.iterdir())}
        elif node.records:
            written = {"kind": "dataset", "splits": data.write_splits(node, out, test_fraction)}
        else:
            raise CaiError(f"{run_dir}: node {name!r} ({node.kind}) holds neither data rows nor a model to export")
        card.write(node, out, written, license)
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)  # nothing half-written
        raise
    return written
