"""What counts as finished: only a folder whose DONE.json was written (last) and renamed into place."""
from __future__ import annotations

from cai.runner import node_status
from cai.store import DONE, Store


class _Node:
    class stage:  # noqa: N801 - the shape graph.Node has
        name = "kind"

    key = "k1"


def test_a_folder_without_done_json_is_not_finished(tmp_path):
    store = Store(tmp_path)
    folder = store.path("kind", "k1")
    folder.mkdir(parents=True)
    (folder / "data.jsonl").write_text("{}\n")
    assert not store.is_done("kind", "k1")
    assert node_status(_Node, store, "use") == "run"
    (folder / DONE).write_text("{}")
    assert store.is_done("kind", "k1") and node_status(_Node, store, "use") == "cached"


def test_interrupted_work_is_resumed_not_cached(tmp_path):
    store = Store(tmp_path)
    store.partial("k1").mkdir()
    (store.partial("k1") / DONE).write_text("{}")  # even a DONE.json inside .partial is not a published artifact
    assert node_status(_Node, store, "use") == "resume"
