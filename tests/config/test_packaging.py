"""The built wheel carries everything a run needs (conf/, recipes/, shipped data) inside the package, and the package
list in pyproject.toml names every folder of cai/ that holds Python code."""
from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_lists_every_python_package():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "cai").rglob("*.py")}
    assert found <= listed and {"cai.conf", "cai.recipes"} <= listed, sorted(found - listed)


@pytest.mark.integration
def test_the_wheel_holds_conf_recipes_data_and_the_console_script(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(ROOT),
                    "-w", str(tmp_path)], check=True, cwd=tmp_path, capture_output=True)
    names = zipfile.ZipFile(next(tmp_path.glob("cai-*.whl"))).namelist()
    for wanted in ("cai/conf/cai.yaml", "cai/conf/stage/sft.yaml", "cai/conf/constitution/harmless.yaml",
                   "cai/conf/constitution/principle/toxic.yaml", "cai/recipes/smol.yaml", "cai/recipes/tiny.yaml",
                   "cai/data/redteam.jsonl", "cai/engines/hf.py"):
        assert wanted in names, wanted
    recipes = {p.name for p in (ROOT / "recipes").glob("*.yaml")}
    assert recipes == {n.split("/")[-1] for n in names if n.startswith("cai/recipes/")}
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "cai = cai.__main__:main" in zipfile.ZipFile(next(tmp_path.glob("cai-*.whl"))).read(entry).decode()
