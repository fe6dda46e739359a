"""Store integrity: checksums in DONE.json, verification on read, atomic writes that name the failing path."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from cai.errors import CaiError
from cai.store import DONE, TMP_SUFFIX, Store, atomic_write, check_folder

from tests.conftest import ROOT


def published(tmp_path, files=None, kind="kind", key="k"):
    store = Store(tmp_path)
    work = store.partial(key)
    (work / "hf").mkdir(parents=True)
    for name, text in (files or {"data.jsonl": '{"id": 1}\n{"id": 2}\n', "hf/state.json": "{}"}).items():
        (work / name).write_text(text)
    return store, store.publish(kind, key, {"node": "n"})


def test_done_json_records_every_file_size_and_hash(tmp_path):
    store, final = published(tmp_path)
    done = json.loads((final / DONE).read_text())
    assert sorted(done["files"]) == ["data.jsonl", "hf/state.json"]
    assert done["files"]["data.jsonl"]["size"] == len('{"id": 1}\n{"id": 2}\n') and done["bytes"] == 22
    assert len(done["files"]["data.jsonl"]["sha256"]) == 64 and store.check("kind", "k") == []


def test_a_flipped_byte_is_named_and_a_truncation_is_caught_without_hashing(tmp_path):
    store, final = published(tmp_path)
    data = bytearray((final / "data.jsonl").read_bytes())
    data[3] ^= 1
    (final / "data.jsonl").write_bytes(bytes(data))
    assert store.check("kind", "k", deep=False) == []  # same size: only the hash can tell
    assert store.check("kind", "k") == [f"{final / 'data.jsonl'}: content changed since it was published "
                                        f"(sha256 differs)"]
    (final / "hf" / "state.json").write_text("")
    problems = store.check("kind", "k", deep=False)
    assert len(problems) == 1 and "hf/state.json: 0 bytes, 2 when published" in problems[0]


def test_a_missing_file_and_an_unreadable_done_json_are_problems(tmp_path):
    store, final = published(tmp_path)
    (final / "hf" / "state.json").unlink()
    assert store.check("kind", "k") == [f"{final / 'hf' / 'state.json'}: missing"]
    (final / DONE).write_text('{"files": {"data.jso')
    assert "DONE.json: unreadable" in store.check("kind", "k")[0]
    (final / DONE).write_text('{"files": {"data.jsonl": 12}}')
    assert store.check("kind", "k") == [f"{final / DONE}: its file list is malformed"]


def test_an_artifact_published_before_checksums_is_accepted(tmp_path):
    store, final = published(tmp_path)
    (final / DONE).write_text(json.dumps({"node": "n", "key": "k"}))
    assert check_folder(final) == []


def test_quarantine_moves_the_damaged_artifact_aside(tmp_path):
    store, final = published(tmp_path)
    moved = store.quarantine("kind", "k")
    assert not final.exists() and (moved / "data.jsonl").is_file() and moved.parent.name == ".corrupt"


def test_temp_files_of_a_killed_write_are_not_published(tmp_path):
    store = Store(tmp_path)
    store.partial("k").mkdir()
    (store.partial("k") / "data.jsonl").write_text("{}\n")
    (store.partial("k") / f".data.jsonl.123{TMP_SUFFIX}").write_text("{")
    final = store.publish("kind", "k", {})
    assert sorted(p.name for p in final.iterdir()) == [DONE, "data.jsonl"]


def test_a_failed_rename_keeps_the_previous_artifact(tmp_path, monkeypatch):
    store, final = published(tmp_path, {"x": "old"})
    store.partial("k").mkdir()
    (store.partial("k") / "x").write_text("new")
    real_replace = __import__("os").replace

    def failing_replace(src, dst):
        if str(src) == str(store.partial("k")):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr("cai.store.os.replace", failing_replace)
    with pytest.raises(OSError):
        store.publish("kind", "k", {})
    assert (final / "x").read_text() == "old" and store.check("kind", "k") == []


def test_atomic_write_failure_names_the_path_and_keeps_the_old_file(tmp_path):
    """RLIMIT_FSIZE (ulimit -f) stands in for a full disk: the write fails with EFBIG part way."""
    target = tmp_path / "metrics.json"
    target.write_text("old")
    script = textwrap.dedent(f"""
        import resource, sys
        from cai.store import atomic_write, StoreWriteError
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, resource.RLIM_INFINITY))
        try:
            atomic_write(__import__("pathlib").Path({str(target)!r}), "x" * 5000)
        except StoreWriteError as err:
            print(err)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert f"could not write {target}: File too large (the file size limit (ulimit -f) was reached" in out.stdout
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_store_write_error_is_a_user_error(tmp_path):
    with pytest.raises(CaiError, match="could not write"):
        atomic_write(tmp_path / "no-such-folder" / "x.json", "{}")

