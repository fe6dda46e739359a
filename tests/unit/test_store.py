"""Store atomicity (nothing visible until DONE.json and the rename) and locking across processes."""
from __future__ import annotations

import multiprocessing

from cai.store import Store


def test_artifact_is_invisible_until_published(tmp_path):
    store = Store(tmp_path)
    work = store.partial("k1")
    work.mkdir()
    (work / "data.jsonl").write_text("{}\n")
    assert not store.is_done("kind", "k1") and not store.path("kind", "k1").exists()
    final = store.publish("kind", "k1", {"node": "n"})
    assert store.is_done("kind", "k1") and (final / "data.jsonl").is_file() and not work.exists()


def test_publish_replaces_an_older_artifact(tmp_path):
    store = Store(tmp_path)
    for text in ("old", "new"):
        store.partial("k").mkdir()
        (store.partial("k") / "x").write_text(text)
        store.publish("kind", "k", {})
    assert (store.path("kind", "k") / "x").read_text() == "new"


def _hold_lock(home, started, release):
    with Store(home).lock("shared"):
        started.set()
        release.wait(60)
        (home / "released").write_text("yes")  # written while the lock is still held


def test_lock_blocks_a_second_process(tmp_path):
    started, release = multiprocessing.Event(), multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(tmp_path, started, release))
    holder.start()
    assert started.wait(30)
    waited = []
    with Store(tmp_path).lock("shared", wait_message=lambda: (waited.append(True), release.set())):
        released = (tmp_path / "released").is_file()  # we got the lock only after the holder let it go
    holder.join()
    assert waited and released
