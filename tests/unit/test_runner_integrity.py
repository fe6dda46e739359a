"""The runner verifies a cached artifact before using it: a damaged one is named, moved aside and recomputed; a
write that fails (file size limit) names its path and leaves the store as it was. Scripted engine, no model."""
from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

from cai.config import compose_run
from cai.engines.scripted import ScriptedEngine
from cai.runner import run
from cai.store import Store

from tests.conftest import ROOT

HELPFUL = ["recipe=tiny", "targets=[helpful]"]


def run_helpful(home, run_dir, *overrides):
    cfg = compose_run([*HELPFUL, f"home={home}", *overrides])
    return run(cfg, run_dir, engine_factory=lambda spec, home: ScriptedEngine())[0]


def test_a_flipped_byte_is_reported_and_the_node_recomputed(tmp_path, caplog):
    first = run_helpful(tmp_path, tmp_path / "r1")
    data = first.path / "data.jsonl"
    original = data.read_bytes()
    damaged = bytearray(original)
    damaged[10] ^= 0x20
    data.write_bytes(bytes(damaged))
    with caplog.at_level(logging.ERROR, logger="cai"):
        again = run_helpful(tmp_path, tmp_path / "r2")
    assert again.status == "ran" and again.path == first.path and data.read_bytes() == original
    assert f"{data}: content changed since it was published" in caplog.text
    quarantined = list((tmp_path / "store" / ".corrupt").iterdir())
    assert len(quarantined) == 1 and (quarantined[0] / "data.jsonl").read_bytes() == bytes(damaged)
    assert run_helpful(tmp_path, tmp_path / "r3").status == "cached"


def test_a_truncated_file_is_caught_by_its_size(tmp_path, caplog):
    first = run_helpful(tmp_path, tmp_path / "r1")
    hf_file = next((first.path / "hf").glob("*.arrow"))
    hf_file.write_bytes(hf_file.read_bytes()[:100])
    with caplog.at_level(logging.ERROR, logger="cai"):
        assert run_helpful(tmp_path, tmp_path / "r2").status == "ran"
    assert f"{hf_file}: 100 bytes" in caplog.text and Store(tmp_path).check("answer_prompts", first.node.key) == []


def test_a_write_past_the_file_size_limit_names_the_file_and_keeps_the_old_artifact(tmp_path):
    first = run_helpful(tmp_path, tmp_path / "r1")
    before = {p.name: p.read_bytes() for p in first.path.iterdir() if p.is_file()}
    # refresh recomputes over the published artifact; samples.md (~2 kB) is past a 1500-byte limit
    script = textwrap.dedent(f"""
        import resource, sys
        from pathlib import Path
        from cai.config import compose_run
        from cai.engines.scripted import ScriptedEngine
        from cai.errors import CaiError
        from cai.runner import run
        cfg = compose_run({HELPFUL!r} + ["home={tmp_path}", "cache.mode=refresh"])
        resource.setrlimit(resource.RLIMIT_FSIZE, (1500, resource.RLIM_INFINITY))
        try:
            run(cfg, Path({str(tmp_path / "r2")!r}), engine_factory=lambda spec, home: ScriptedEngine())
        except CaiError as err:
            print(err)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    partial = Store(tmp_path).partial(first.node.key)
    assert f"pipeline.helpful: could not write {partial}/" in out.stdout, out.stdout + out.stderr
    assert "File too large (the file size limit (ulimit -f) was reached" in out.stdout
    failed = out.stdout.split("could not write ")[1].split(":")[0]
    assert (ROOT / failed).stat().st_size == 1500  # the named file is the one cut at the limit
    assert {p.name: p.read_bytes() for p in first.path.iterdir() if p.is_file()} == before
    assert Store(tmp_path).check("answer_prompts", first.node.key) == []
