"""`python -m cai.store ls|verify|gc`: what is referenced is kept, the rest (and old partials) freed and printed."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from cai.store import Store
from cai.store.cli import main

from tests.conftest import ROOT


def artifact(store: Store, kind: str, key: str, text: str = "{}\n"):
    store.partial(key).mkdir(parents=True)
    (store.partial(key) / "data.jsonl").write_text(text)
    return store.publish(kind, key, {"node": kind})


def run_dir(home, name, paths, model_keys=None):
    folder = home / "runs" / "tiny" / name
    folder.mkdir(parents=True)
    plan = {"nodes": [{"node": "n", "path": str(p)} for p in paths]}
    if model_keys is not None:
        plan["model_keys"] = model_keys
    (folder / "plan.json").write_text(json.dumps(plan))
    return folder


def test_gc_removes_what_no_run_references_and_dry_run_removes_nothing(tmp_path, capsys):
    store = Store(tmp_path)
    kept, dropped = artifact(store, "sft", "a" * 20), artifact(store, "sft", "b" * 20, "x" * 5000)
    model = artifact(store, "model", "m" * 20)
    run_dir(tmp_path, "r1", [kept], {"models.base": "m" * 20})
    assert main(["--home", str(tmp_path), "gc", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would remove {dropped} (5.3 kB): no run directory references it" in out and dropped.exists()
    assert main(["--home", str(tmp_path), "gc"]) == 0
    out = capsys.readouterr().out
    assert f"removed {dropped}" in out and "freed 5.3 kB in 1 entries" in out
    assert kept.exists() and model.exists() and not dropped.exists()


def test_gc_keeps_converted_models_when_a_plan_predates_model_keys(tmp_path, capsys):
    store = Store(tmp_path)
    model = artifact(store, "model", "m" * 20)
    run_dir(tmp_path, "old", [])
    main(["--home", str(tmp_path), "gc"])
    assert model.exists()


def test_gc_removes_old_partials_and_quarantined_artifacts_but_not_fresh_partials(tmp_path, capsys):
    store = Store(tmp_path)
    old, fresh = store.partial("o" * 20), store.partial("f" * 20)
    for folder in (old, fresh):
        folder.mkdir()
        (folder / "data.jsonl").write_text("{}\n")
    two_days_ago = time.time() - 48 * 3600
    for path in (old / "data.jsonl", old):
        os.utime(path, (two_days_ago, two_days_ago))
    artifact(store, "sft", "c" * 20)
    store.quarantine("sft", "c" * 20)
    main(["--home", str(tmp_path), "gc"])
    out = capsys.readouterr().out
    assert "partial untouched for over 24 h" in out and "damaged (quarantined)" in out
    assert not old.exists() and fresh.exists() and not list((store.root / ".corrupt").iterdir())


def test_gc_skips_an_artifact_whose_lock_is_held(tmp_path, capsys):
    store = Store(tmp_path)
    busy = artifact(store, "sft", "d" * 20)
    with store.lock("d" * 20):
        subprocess.run([sys.executable, "-m", "cai.store", "--home", str(tmp_path), "gc"], cwd=ROOT, check=True,
                       capture_output=True)
    assert busy.exists()
    main(["--home", str(tmp_path), "gc"])
    assert not busy.exists() and not list((store.root / ".locks").iterdir())


def test_verify_names_a_damaged_file_and_exits_1(tmp_path, capsys):
    store = Store(tmp_path)
    good, bad = artifact(store, "sft", "g" * 20), artifact(store, "sft", "h" * 20, "abc\n")
    (bad / "data.jsonl").write_text("abd\n")
    assert main(["--home", str(tmp_path), "verify"]) == 1
    out = capsys.readouterr().out
    assert f"DAMAGED     {bad / 'data.jsonl'}: content changed" in out and str(good) not in out
    assert "2 artifacts checked (sha256): 1 damaged" in out
    assert main(["--home", str(tmp_path), "verify", "--quick"]) == 0  # same size: only the hash catches it
    assert main(["--home", str(tmp_path), "verify", "g" * 20]) == 0


def test_ls_and_the_cai_store_console_form(tmp_path):
    store = Store(tmp_path)
    referenced = artifact(store, "sft", "e" * 20)
    run_dir(tmp_path, "r1", [referenced], {})
    artifact(store, "sft", "z" * 20)
    out = subprocess.run([sys.executable, "-m", "cai", "store", "--home", str(tmp_path), "ls"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    lines = {line.split()[1]: line for line in out.splitlines()[1:3]}
    assert lines["e" * 20].endswith("yes") and lines["z" * 20].endswith("no")


def test_a_missing_store_is_a_clear_error(tmp_path, capsys):
    assert main(["--home", str(tmp_path / "nothing"), "ls"]) == 2
    assert "no store at" in capsys.readouterr().out
