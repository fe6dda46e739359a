"""Secrets never reach disk: with recognisable fake tokens in the environment (HF_TOKEN, OPENAI_API_KEY and the
variable a model names in `api_key_env`), a whole recipe=tiny run leaves none of them in any file under CAI_HOME:
store, run directory, plan.json, node.yaml, lineage, logs, report, datasets and model folders alike."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import pytest

from tests.conftest import run_cli

FAKE: Dict[str, str] = {"HF_TOKEN": "hf_FAKEtokenNOTREAL0123456789abcdef",
                        "OPENAI_API_KEY": "sk-FAKEkeyNOTREAL0123456789abcdef",
                        "MY_FAKE_KEY_VAR": "cai-FAKE-custom-secret-9876543210"}
PICKLES = (".bin", ".pt", ".pth", ".pkl", ".pickle")


def files_holding(root: Path, needles: List[str]) -> List[str]:
    """`path: needle` for every file under `root` (symlinks not followed) whose bytes contain a needle."""
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        hits += [f"{path}: {needle}" for needle in needles if needle.encode() in data]
    return hits


def test_the_scanner_finds_a_planted_secret(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "weights.safetensors").write_bytes(b"\x00\x01" + FAKE["HF_TOKEN"].encode() + b"\xff")
    assert files_holding(tmp_path, list(FAKE.values())) == [f"{tmp_path}/a/b/weights.safetensors: {FAKE['HF_TOKEN']}"]


@pytest.fixture(scope="module")
def secret_run(tmp_path_factory):
    """recipe=tiny end to end with the fake secrets set; the judge names its key variable (carried by the hf
    engine, which needs none)."""
    import os

    home = tmp_path_factory.mktemp("secrets_home")
    saved = {name: os.environ.get(name) for name in FAKE}
    os.environ.update(FAKE)
    try:
        proc = run_cli("recipe=tiny", "models.judge.api_key_env=MY_FAKE_KEY_VAR", home=home, timeout=600, check=True)
    finally:
        for name, value in saved.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)
    return home, proc


def test_no_secret_is_written_anywhere_under_cai_home(secret_run):
    home, proc = secret_run
    assert files_holding(home, list(FAKE.values())) == []
    assert not any(secret in proc.stdout + proc.stderr for secret in FAKE.values())
    lineage = [p for p in (home / "store").rglob("lineage.json") if "MY_FAKE_KEY_VAR" in p.read_text()]
    assert lineage, "the judge's api_key_env name should be carried into lineage (the run used the spec)"
    assert (next((home / "runs" / "tiny").iterdir()) / "report.md").is_file()


def test_published_artifacts_hold_no_pickles(secret_run):
    home, _ = secret_run
    published = [p for p in (home / "store").rglob("*") if p.is_file() and ".partial" not in p.parts]
    assert published and [p for p in published if p.suffix in PICKLES] == []
