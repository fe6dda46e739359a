"""Store atomicity (nothing visible until DONE.json and the rename) and locking across processes."""
from __future__ import annotations

import multiprocessing
import time

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


def _hold_lock(home, started, seconds):
    with Store(home).lock("shared"):
        started.set()
        time.sleep(seconds)


def test_lock_blocks_a_second_process(tmp_path):
    started = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(tmp_path, started, 1.5))
    holder.start()
    assert started.wait(30)
    waited = []
    t0 = time.perf_counter()
    with Store(tmp_path).lock("shared", wait_message=lambda: waited.append(True)):
        elapsed = time.perf_counter() - t0
    holder.join()
    assert waited and elapsed > 0.8
