"""A user's config folder is read before Hydra: broken YAML, non-UTF-8 bytes and malformed defaults lists are
named with the file (Hydra printed them as tracebacks)."""
from __future__ import annotations

import pytest

from cai.config import compose_run
from cai.config_files import user_config_dirs
from cai.errors import CaiError
from tests.conftest import run_cli

CASES = [(b"name: x\nkey: [unclosed\n", "not valid YAML at line 3, column 1"),
         (b"name: \xff\xfe\n", "not UTF-8 text (byte 6 is 0xff)"),
         (b"defaults:\n", "`defaults` must be a list"),
         (b"defaults:\n  - {a: 1, b: 2}\n", "`defaults` entry {'a': 1, 'b': 2}: expected `group: option`"),
         (b"defaults:\n  - principle@critique_revision: [toxic, null]\n", "`defaults` entry {'principle@critique_"),
         (b"- a\n- b\n", "a config file holds a mapping (key: value), not a list")]


@pytest.mark.parametrize("content,message", CASES, ids=[m.split(" (")[0] for _, m in CASES])
def test_a_broken_user_config_file_is_named(tmp_path, content, message):
    path = tmp_path / "constitution" / "mine.yaml"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(CaiError) as error:
        compose_run(["recipe=tiny", f"hydra.searchpath=[file://{tmp_path}]", "constitution=mine"])
    assert str(error.value).startswith(f"{path}: {message}")


def test_config_dirs_are_found_in_every_command_line_form(tmp_path):
    argv = ["--config-dir", "/a", "-cd=/b", "hydra.searchpath=[file:///c,pkg://x,'file:///d']", "x=1"]
    assert [str(p) for p in user_config_dirs(argv)] == ["/a", "/b", "/c", "/d"]


def test_the_cli_prints_it_without_a_traceback(tmp_path, cai_home):
    (tmp_path / "constitution").mkdir()
    (tmp_path / "constitution" / "mine.yaml").write_text("defaults: oops\n")
    proc = run_cli("recipe=tiny", f"hydra.searchpath=[file://{tmp_path}]", "constitution=mine", home=cai_home)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"error: {tmp_path}/constitution/mine.yaml: `defaults` must be a list" in proc.stderr
