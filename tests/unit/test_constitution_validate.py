"""validate_constitution and find_duplicate_ids: every malformed variant fails naming its file and key."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from cai.constitution.validate import find_duplicate_ids, validate_constitution
from cai.errors import CaiError
from cai.schema import Constitution

# Our own tiny constitution, one item per group; `write_library` lays it out as one file per id.
VALID = {
    "name": "tiny",
    "description": "a test constitution",
    "critique_revision": {"p_rude": {"critique": "Say where the reply is rude.", "revision": "Rewrite it kindly.",
                                     "weight": 1.0, "tags": ["tone"]}},
    "comparison": {"c_kind": {"text": "Choose the kinder reply.", "weight": 2.0, "tags": []}},
    "select": [],
    "comparison_select": [],
    "fewshot": {
        "critique_revision": {"ex_hello": {"messages": [
            {"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Go away."},
            {"role": "user", "content": "Say where the reply is rude."},
            {"role": "assistant", "content": "It is curt."},
            {"role": "user", "content": "Rewrite it kindly."}, {"role": "assistant", "content": "Hi there!"}]}},
        "labeling": {"lab_hi": {"conversation": [{"role": "user", "content": "Say hi."}],
                                "better": "Hello!", "worse": "No.", "principle": None}},
        "cot": {"cot_hi": {"conversation": [{"role": "user", "content": "Say hi."}], "response_a": "Hello!",
                           "response_b": "No.", "reasoning": "A greets, B refuses.", "answer": "A",
                           "principle_slot": "{principle}"}},
    },
}
GROUPS = {("critique_revision",): "principle", ("comparison",): "comparison",
          ("fewshot", "critique_revision"): "exemplar", ("fewshot", "labeling"): "label_exemplar",
          ("fewshot", "cot"): "cot_exemplar"}


def write_library(root: Path, constitution: dict) -> Path:
    """Lay `constitution` out as Hydra config files under root/constitution/ (one file per id)."""
    for keys, group in GROUPS.items():
        section = constitution
        for key in keys:
            section = section[key]
        for id_, item in section.items():
            _write(root / "constitution" / group / f"{id_}.yaml", {id_: item})
    _write(root / "constitution" / f"{constitution['name']}.yaml", {"name": constitution["name"]})
    return root


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# test file\n" + yaml.safe_dump(data, sort_keys=False))


def errors_of(constitution: dict, dirs) -> str:
    """The CaiError message validation raises (failing the test when it raises none)."""
    with pytest.raises(CaiError) as info:
        validate_constitution(constitution, dirs)
    return str(info.value)


@pytest.fixture
def lib(tmp_path):
    """A fresh copy of VALID and its config dir."""
    data = copy.deepcopy(VALID)
    return data, [write_library(tmp_path, data)]


def test_valid_constitution_passes_as_dict_and_dictconfig(lib):
    data, dirs = lib
    validate_constitution(data, dirs)
    validate_constitution(OmegaConf.merge(OmegaConf.structured(Constitution), data), dirs)


def test_comparison_only_constitution_is_accepted(lib):
    data, dirs = lib
    data["critique_revision"] = {}
    data["fewshot"] = {}
    validate_constitution(data, dirs)


@pytest.mark.parametrize("field", ["critique", "revision"])
def test_missing_principle_field_names_file_and_key(lib, field):
    data, dirs = lib
    del data["critique_revision"]["p_rude"][field]
    message = errors_of(data, dirs)
    assert "principle/p_rude.yaml" in message and f"p_rude.{field} is missing" in message


def test_missing_value_from_schema_is_reported_not_raised(lib):
    data, dirs = lib
    del data["comparison"]["c_kind"]["text"]
    cfg = OmegaConf.merge(OmegaConf.structured(Constitution), data)  # text becomes ??? (MISSING)
    message = errors_of(cfg, dirs)
    assert "comparison/c_kind.yaml" in message and "c_kind.text is missing" in message


@pytest.mark.parametrize("path, key", [
    (("critique_revision", "p_rude", "revision"), "p_rude.revision"),
    (("comparison", "c_kind", "text"), "c_kind.text"),
    (("fewshot", "labeling", "lab_hi", "better"), "lab_hi.better"),
    (("fewshot", "cot", "cot_hi", "reasoning"), "cot_hi.reasoning"),
])
def test_empty_field_names_file_and_key(lib, path, key):
    data, dirs = lib
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = "   "
    message = errors_of(data, dirs)
    assert f"{key} is empty" in message and f"{key.split('.')[0]}.yaml" in message


def test_empty_message_content_names_message_index(lib):
    data, dirs = lib
    data["fewshot"]["critique_revision"]["ex_hello"]["messages"][3]["content"] = ""
    message = errors_of(data, dirs)
    assert "exemplar/ex_hello.yaml" in message and "ex_hello.messages[3].content is empty" in message


def test_falls_back_to_the_key_path_when_no_file_defines_the_id(lib):
    data, _ = lib
    del data["critique_revision"]["p_rude"]["critique"]
    message = errors_of(data, [])
    assert "constitution.critique_revision.p_rude.critique is missing" in message


def test_finds_the_file_by_content_when_not_named_after_the_id(lib, tmp_path):
    data, dirs = lib
    (tmp_path / "constitution/principle/p_rude.yaml").rename(tmp_path / "constitution/principle/other.yaml")
    data["critique_revision"]["p_rude"]["weight"] = 0
    message = errors_of(data, dirs)
    assert "principle/other.yaml: p_rude.weight must be a number > 0" in message


@pytest.mark.parametrize("select_key, bad", [("select", "p_missing"), ("comparison_select", "c_missing")])
def test_unknown_selected_id_names_the_constitution_file(lib, select_key, bad):
    data, dirs = lib
    data[select_key] = [bad]
    message = errors_of(data, dirs)
    assert "constitution/tiny.yaml" in message and select_key in message and bad in message


@pytest.mark.parametrize("weight", [0, -1.5, "heavy"])
def test_weight_must_be_positive(lib, weight):
    data, dirs = lib
    data["comparison"]["c_kind"]["weight"] = weight
    message = errors_of(data, dirs)
    assert "comparison/c_kind.yaml" in message and "c_kind.weight must be a number > 0" in message


def _roles(data, roles):
    data["fewshot"]["critique_revision"]["ex_hello"]["messages"] = [
        {"role": r, "content": f"turn {i}"} for i, r in enumerate(roles)]


@pytest.mark.parametrize("roles, expected", [
    (["user", "user", "assistant"], "roles must alternate user/assistant"),
    (["user", "assistant", "assistant"], "roles must alternate user/assistant"),
    (["assistant", "user", "assistant"], "must start with a user turn"),
    (["user", "assistant", "user"], "must end on an assistant turn"),
    (["user", "system", "assistant"], "roles must alternate user/assistant"),
    (["user", "robot"], "must be one of system/user/assistant"),
    ([], "is missing or empty"),
])
def test_malformed_exemplar_roles_name_file_and_key(lib, roles, expected):
    data, dirs = lib
    _roles(data, roles)
    message = errors_of(data, dirs)
    assert "exemplar/ex_hello.yaml" in message and "ex_hello.messages" in message and expected in message


def test_leading_system_message_is_allowed(lib):
    data, dirs = lib
    _roles(data, ["system", "user", "assistant"])
    validate_constitution(data, dirs)


def test_labeling_conversation_must_end_on_user(lib):
    data, dirs = lib
    data["fewshot"]["labeling"]["lab_hi"]["conversation"].append({"role": "assistant", "content": "Hello!"})
    message = errors_of(data, dirs)
    assert "label_exemplar/lab_hi.yaml" in message and "lab_hi.conversation must end on a user turn" in message


def test_cot_without_principle_slot_is_rejected(lib):
    data, dirs = lib
    data["fewshot"]["cot"]["cot_hi"]["principle_slot"] = "Which is better? {}"
    message = errors_of(data, dirs)
    assert "cot_exemplar/cot_hi.yaml" in message and "cot_hi.principle_slot must contain {principle}" in message


@pytest.mark.parametrize("answer", ["C", "a", "(A)"])
def test_cot_answer_must_be_a_or_b(lib, answer):
    data, dirs = lib
    data["fewshot"]["cot"]["cot_hi"]["answer"] = answer
    message = errors_of(data, dirs)
    assert "cot_hi.answer must be A or B" in message


def test_every_problem_is_listed_in_one_error(lib):
    data, dirs = lib
    data["critique_revision"]["p_rude"]["critique"] = ""
    data["comparison"]["c_kind"]["text"] = ""
    message = errors_of(data, dirs)
    assert "2 problem(s)" in message and "p_rude.critique" in message and "c_kind.text" in message


def test_duplicate_id_across_two_files_names_both(lib, tmp_path):
    data, dirs = lib
    twin = tmp_path / "constitution/principle/p_rude_copy.yaml"
    _write(twin, {"p_rude": {"critique": "Other.", "revision": "Other."}})
    problems = find_duplicate_ids(dirs)
    messages = " | ".join(p.message for p in problems)
    assert "p_rude_copy.yaml" in messages and "principle/p_rude.yaml" in messages
    assert any(p.id == "p_rude" and len(p.files) == 2 for p in problems)
    message = errors_of(data, dirs)  # the composed constitution uses p_rude, so validation reports it too
    assert "p_rude_copy.yaml" in message and "principle/p_rude.yaml" in message


def test_duplicate_id_across_two_search_dirs_names_both(lib, tmp_path):
    data, dirs = lib
    other = tmp_path / "other"
    _write(other / "constitution/comparison/c_kind.yaml", {"c_kind": {"text": "Shadow."}})
    message = errors_of(data, dirs + [other])
    assert str(other / "constitution/comparison/c_kind.yaml") in message
    assert str(tmp_path / "constitution/comparison/c_kind.yaml") in message


def test_file_whose_id_differs_from_its_name_is_reported(lib, tmp_path):
    data, dirs = lib
    _write(tmp_path / "constitution/exemplar/ex_bye.yaml", {"ex_hello": {"messages": []}})
    problems = find_duplicate_ids(dirs)
    assert any("ex_bye.yaml: defines 'ex_hello'" in p.message for p in problems)
    assert "ex_bye.yaml" in errors_of(data, dirs)


def test_unrelated_duplicates_do_not_block_other_constitutions(lib, tmp_path):
    data, dirs = lib
    _write(tmp_path / "constitution/principle/x_one.yaml", {"x_two": {"critique": "c", "revision": "r"}})
    assert find_duplicate_ids(dirs)
    validate_constitution(data, dirs)


def test_composed_constitution_with_missing_field_names_the_file(lib, tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.config_store import ConfigStore

    from cai.schema import RunConfig

    data, dirs = lib
    del data["critique_revision"]["p_rude"]["revision"]
    write_library(tmp_path, data)
    _write(tmp_path / "constitution/tiny.yaml", {"defaults": [{"principle@critique_revision": ["p_rude"]},
                                                            {"comparison@comparison": ["c_kind"]}, "_self_"],
                                                "name": "tiny"})
    (tmp_path / "primary.yaml").write_text("defaults:\n  - run_schema\n  - _self_\n  - constitution: tiny\n")
    ConfigStore.instance().store(name="run_schema", node=RunConfig)
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        cfg = compose("primary")
    message = errors_of(cfg.constitution, dirs)
    assert "principle/p_rude.yaml: p_rude.revision is missing" in message


def test_shipped_library_has_no_duplicate_ids():
    conf = Path(__file__).resolve().parents[2] / "conf"
    assert [p.message for p in find_duplicate_ids([conf])] == []
