"""Constitution user errors that used to escape as tracebacks or pass silently: each is one CaiError naming file and key."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from cai.constitution import selected_ids
from cai.constitution.__main__ import main
from cai.constitution.files import loaded
from cai.constitution.validate import validate_constitution
from cai.errors import CaiError
from cai.schema import Constitution
from tests.conftest import run_cli
from tests.unit.test_constitution_validate import VALID, errors_of, write_library

UNRESOLVED = "Identify ${nope.key} problems."


@pytest.fixture
def lib(tmp_path):
    """A fresh copy of VALID and its config dir."""
    data = copy.deepcopy(VALID)
    return data, [write_library(tmp_path / "lib", data)]


@pytest.fixture
def user_conf(tmp_path) -> Path:
    """A user config dir: constitution `broken` (no name, a principle with ${nope.key}) and an empty principle file."""
    root = tmp_path / "conf" / "constitution"
    (root / "principle").mkdir(parents=True)
    (root / "principle" / "interp.yaml").write_text(yaml.safe_dump({"interp": {"critique": UNRESOLVED,
                                                                               "revision": "Rewrite."}}))
    (root / "principle" / "emptyfile.yaml").write_text("")
    (root / "broken.yaml").write_text(yaml.safe_dump({"defaults": [
        {"principle@critique_revision": ["toxic", "interp", "emptyfile"]},
        {"comparison@comparison": ["cmp_harmless_general"]}, {"fewshot": "none"}, "_self_"]}))
    return tmp_path / "conf"


def test_missing_name_is_reported_not_raised(lib):
    data, dirs = lib
    del data["name"]
    message = errors_of(OmegaConf.merge(OmegaConf.structured(Constitution), data), dirs)  # name becomes ???
    assert message.startswith("the constitution is invalid") and "constitution.name is missing or empty" in message
    with pytest.raises(CaiError) as info:
        validate_constitution(data, dirs, loaded={"": {"tiny"}})
    assert "constitution/tiny.yaml: name is missing or empty (key constitution.name)" in str(info.value)


@pytest.mark.parametrize("path, key, file", [
    (("critique_revision", "p_rude", "critique"), "p_rude.critique", "principle/p_rude.yaml"),
    (("fewshot", "critique_revision", "ex_hello", "messages", 1, "content"), "ex_hello.messages[1].content",
     "exemplar/ex_hello.yaml"),
    (("description",), "constitution.description", None),
])
def test_unresolved_interpolation_names_file_key_and_the_escape(lib, path, key, file):
    data, dirs = lib
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = UNRESOLVED
    message = errors_of(OmegaConf.merge(OmegaConf.structured(Constitution), data), dirs)
    assert f"{key} has a ${{...}} interpolation that does not resolve" in message
    assert "Interpolation key 'nope.key' not found" in message and "write \\${ for a literal ${" in message
    assert file is None or f"{file}: {key}" in message


def test_escaped_dollar_brace_is_literal_text(lib):
    data, dirs = lib
    data["critique_revision"]["p_rude"]["critique"] = "Does it quote \\${HOME} literally?"
    validate_constitution(OmegaConf.merge(OmegaConf.structured(Constitution), data), dirs)


def test_empty_group_file_is_reported_only_when_loaded(lib):
    data, dirs = lib
    (dirs[0] / "constitution/principle/emptyfile.yaml").write_text("")
    validate_constitution(data, dirs)  # another constitution's broken file does not block this one
    with pytest.raises(CaiError) as info:
        validate_constitution(data, dirs, loaded={"principle": {"p_rude", "emptyfile"}})
    assert "principle/emptyfile.yaml: defines nothing (the file is empty)" in str(info.value)


def test_loaded_names_group_files_that_compose_to_nothing(user_conf, cai_home):
    options = loaded(["recipe=tiny", f"hydra.searchpath=[file://{user_conf}]",
                      "constitution/principle@constitution.critique_revision=[toxic,emptyfile]"])
    assert options["principle"] == {"toxic", "emptyfile"} and options[""] == {"harmless"}


def test_show_reports_every_problem_without_a_traceback(user_conf, cai_home, capsys):
    assert main(["show", "broken", "--config-dir", str(user_conf)]) == 2
    err = capsys.readouterr().err
    assert "broken.yaml: name is missing or empty (key constitution.name)" in err
    assert "principle/interp.yaml: interp.critique has a ${...} interpolation" in err and "nope.key" in err
    assert "principle/emptyfile.yaml: defines nothing (the file is empty)" in err


def test_run_reports_every_problem_before_planning(user_conf, cai_home):
    proc = run_cli("recipe=tiny", "dry_run=true", "constitution=broken", f"hydra.searchpath=[file://{user_conf}]",
                   home=cai_home)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "broken.yaml: name is missing or empty (key constitution.name)" in proc.stderr
    assert "interp.critique has a ${...} interpolation" in proc.stderr
    assert "principle/emptyfile.yaml: defines nothing (the file is empty)" in proc.stderr


@pytest.mark.parametrize("where, section", [("constitution.select", "constitution.critique_revision"),
                                            ("constitution.comparison_select", "constitution.comparison")])
def test_nothing_to_sample_blames_the_empty_map_not_the_selection(where, section):
    with pytest.raises(CaiError, match=f"^{section} is empty: the constitution has no principles to sample from"):
        selected_ids({}, [], where)
