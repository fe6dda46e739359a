"""The data of an export: one Parquet file per split under data/, named `<split>-00000-of-00001.parquet` as the Hub
names them, so `datasets.load_dataset(DIR)` returns a DatasetDict with these splits (the card lists them too)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Dict, List

from cai.critique.export import hf_row as sl_row
from cai.feedback.export import hf_row as label_row
from cai.report.load import NodeView


def in_test(row_id: str, fraction: float) -> bool:
    """Whether a row is held out: a hash of its id, so the split does not depend on row order or seed."""
    return int(hashlib.sha256(str(row_id).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


def split(rows: List[dict], fraction: float) -> Dict[str, List[dict]]:
    """{train, test} by id hash; with two rows or more and fraction > 0, each side keeps at least one."""
    test = [r for r in rows if in_test(r["id"], fraction)]
    train = [r for r in rows if not in_test(r["id"], fraction)]
    if fraction > 0 and len(rows) >= 2 and not test:
        test, train = train[-1:], train[:-1]
    if len(rows) >= 2 and not train:
        train, test = test[:1], test[1:]
    return {"train": train, "test": test}


def splits(node: NodeView, fraction: float) -> Dict[str, List[dict]]:
    """Rows per split name for the artifact's kind of data."""
    if node.is_sl():
        parts = split([sl_row(r) for r in node.records], fraction)
        # cai-conversation-harmless: the same rows serve SFT (messages) and preferences (chosen = revised)
        return {"train_sft": parts["train"], "test_sft": parts["test"],
                "train_prefs": parts["train"], "test_prefs": parts["test"]}
    if node.is_labels():
        parts = split([label_row(r) for r in node.records], fraction)
        return {"train_prefs": parts["train"], "test_prefs": parts["test"]}
    return {"train": [{k: v for k, v in r.items()} for r in node.records]}


def write_splits(node: NodeView, out: Path, fraction: float) -> Dict[str, int]:
    """data/<split>-00000-of-00001.parquet per non-empty split; returns rows per split."""
    from datasets import Dataset

    (out / "data").mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, rows in splits(node, fraction).items():
        if rows:
            Dataset.from_list(rows).to_parquet(str(out / "data" / f"{name}-00000-of-00001.parquet"))
            counts[name] = len(rows)
    return counts
