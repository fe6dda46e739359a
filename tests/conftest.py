"""Shared fixtures: an isolated $CAI_HOME per test, composing configs, and running the CLI."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# The tests' models are tiny: one thread beats two (no thread-pool sync per small matmul), and the CLI
# subprocesses inherit it. Set before torch is imported by any test module.
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
if (SHARED / "evals").is_dir():  # recipes read upstream files in place through $CAI_SHARED (hhh_eval)
    os.environ.setdefault("CAI_SHARED", str(SHARED))


@pytest.fixture
def cai_home(tmp_path, monkeypatch) -> Path:
    """A fresh store for this test; CAI_HOME points at it."""
    home = tmp_path / "cai_home"
    monkeypatch.setenv("CAI_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def shared_home(tmp_path_factory) -> Path:
    """A store shared by the tests of one session (the tiny model is built once)."""
    return tmp_path_factory.mktemp("shared_home")


def run_cli(*args: str, home: Path, timeout: int = 240, check: bool = False) -> subprocess.CompletedProcess:
    """Run `python -m cai ARGS` as a user would, with CAI_HOME set."""
    # PYTHONPATH: processes the run starts (Ray workers, submitit jobs) import this checkout's cai too
    env = {**os.environ, "CAI_HOME": str(home), "PYTHONUNBUFFERED": "1", "RAY_AUTH_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([sys.executable, "-m", "cai", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"cai {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def pytest_collection_modifyitems(config, items):
    """Tests under tests/integration run the tiny pipeline: marked `integration` (still in the default run)."""
    for item in items:
        if "tests/integration/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)
