"""Importers: the upstream Anthropic and llm-swarm files convert into a config dir that composes and validates."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from cai.constitution.__main__ import main
from cai.constitution.importers import parse_transcript, run_import
from cai.constitution.validate import find_duplicate_ids, validate_constitution
from cai.errors import CaiError

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "constitutions"
ANTHROPIC = SHARED / "ConstitutionalHarmlessnessPaper"
SWARM = SHARED / "llm-swarm"
needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason=f"upstream constitution files not found at {SHARED} "
                                  "(the shared/ folder beside the checkout)")


def compose_constitution(out: Path, name: str, tmp_path: Path):
    """Compose `constitution=name` from `out` against the run schema, with a throwaway primary config."""
    from hydra import compose, initialize_config_dir
    from hydra.core.config_store import ConfigStore

    from cai.schema import RunConfig

    primary = tmp_path / "primary"
    primary.mkdir(exist_ok=True)
    (primary / "probe.yaml").write_text(f"defaults:\n  - run_schema\n  - _self_\n  - constitution: {name}\n")
    ConfigStore.instance().store(name="run_schema", node=RunConfig)
    with initialize_config_dir(config_dir=str(primary), version_base="1.3"):
        return compose("probe", overrides=[f"hydra.searchpath=[file://{out}]"]).constitution


def load(path: Path) -> dict:
    """A written YAML file, parsed."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_parse_transcript_maps_speakers_to_roles():
    text = "\n\nHuman: Hi there.\n\nAssistant: Hello.\nSecond line.\n\nCritiqueRequest: Judge it.\n\nCritique: Fine."
    speakers = ["Human", "Assistant", "CritiqueRequest", "Critique"]
    assert parse_transcript(text + "\n\nHuman:", speakers) == [
        {"role": "user", "content": "Hi there."}, {"role": "assistant", "content": "Hello.\nSecond line."},
        {"role": "user", "content": "Judge it."}, {"role": "assistant", "content": "Fine."}]


@needs_shared
def test_anthropic_import_round_trip(tmp_path):
    out = tmp_path / "out"
    path = run_import("anthropic", sorted(ANTHROPIC.glob("*.json")), out)
    root = out / "constitution"
    assert path == root / "anthropic.yaml"
    counts = {g: len(list((root / g).glob("anthropic_*.yaml")))
              for g in ("principle", "comparison", "exemplar", "label_exemplar", "cot_exemplar")}
    assert counts == {"principle": 16, "comparison": 16, "exemplar": 5, "label_exemplar": 5, "cot_exemplar": 6}
    for file in root.rglob("*.yaml"):
        first = file.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# ") and "Run: python -m cai" in first, file
    for file in (root / "principle").glob("*.yaml"):
        (id_, principle), = load(file).items()
        assert id_ == file.stem and id_.startswith("anthropic_harmful")
        assert "Request:" not in principle["critique"] + principle["revision"]
        assert not principle["critique"].endswith("Critique:") and not principle["revision"].endswith("Revision:")
    for file in (root / "comparison").glob("*.yaml"):
        assert not next(iter(load(file).values()))["text"].rstrip().endswith("Options:")
    assert find_duplicate_ids([out]) == []


@needs_shared
def test_anthropic_exemplars_are_chats(tmp_path):
    out = tmp_path / "out"
    run_import("anthropic", sorted(ANTHROPIC.glob("*.json")), out)
    root = out / "constitution"
    for file in (root / "exemplar").glob("*.yaml"):
        roles = [m["role"] for m in next(iter(load(file).values()))["messages"]]
        assert roles[0] == "user" and roles[-1] == "assistant" and len(roles) % 2 == 0
    for file in (root / "label_exemplar").glob("*.yaml"):
        lab = next(iter(load(file).values()))
        assert lab["conversation"][-1]["role"] == "user" and lab["better"] and lab["worse"]
    for file in (root / "cot_exemplar").glob("*.yaml"):
        cot = next(iter(load(file).values()))
        assert cot["answer"] in ("A", "B") and "{principle}" in cot["principle_slot"]
        assert "{}" not in cot["principle_slot"] and "[[[" not in cot["response_a"] + cot["response_b"]
        assert cot["conversation"][0]["role"] == "user" and cot["conversation"][-1]["role"] == "user"


@needs_shared
def test_anthropic_import_composes_against_the_schema_and_validates(tmp_path):
    out = tmp_path / "out"
    run_import("anthropic", sorted(ANTHROPIC.glob("*.json")), out, name="paper")
    constitution = compose_constitution(out, "paper", tmp_path)
    assert constitution.name == "paper"
    assert len(constitution.critique_revision) == 16 and len(constitution.comparison) == 16
    assert len(constitution.fewshot.critique_revision) == 5 and len(constitution.fewshot.labeling) == 5
    assert len(constitution.fewshot.cot) == 6
    assert all(i.startswith("paper_") for i in constitution.critique_revision)
    validate_constitution(constitution, [out])


@needs_shared
def test_anthropic_files_are_recognized_by_content(tmp_path):
    renamed = []
    for i, file in enumerate(sorted(ANTHROPIC.glob("*.json"))):
        renamed.append(tmp_path / f"upstream_{i}.json")
        shutil.copy(file, renamed[-1])  # into the test's tmp dir only
    out = tmp_path / "out"
    run_import("anthropic", renamed, out)
    validate_constitution(compose_constitution(out, "anthropic", tmp_path), [out])
    assert len(list((out / "constitution/cot_exemplar").glob("*.yaml"))) == 6


@needs_shared
@pytest.mark.parametrize("file, name, pairs", [("constitution_anthropic.json", "swarm", 16),
                                              ("constituion_grok.json", "grok", 2)])
def test_llm_swarm_import_round_trip(tmp_path, file, name, pairs):
    out = tmp_path / "out"
    run_import("llm-swarm", [SWARM / file], out, name=name)
    constitution = compose_constitution(out, name, tmp_path)
    assert len(constitution.critique_revision) == pairs and len(constitution.comparison) == 0
    assert len(constitution.fewshot.critique_revision) == 4
    assert all(i.startswith(f"{name}_") for i in constitution.critique_revision)
    validate_constitution(constitution, [out])


@needs_shared
def test_cli_import_then_show(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["import", "--format", "llm-swarm", str(SWARM / "constitution_anthropic.json"), "-o", str(out),
                 "--name", "swarm"]) == 0
    assert "constitution=swarm" in capsys.readouterr().out
    assert main(["show", "swarm", "--config-dir", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "swarm_p15" in shown and "exemplar swarm_cr0" in shown and "\n\nHuman: " in shown


def test_errors_are_clear(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"unrelated": 1}')
    with pytest.raises(CaiError, match="not one of Anthropic's"):
        run_import("anthropic", [bad], tmp_path / "out")
    with pytest.raises(CaiError, match="not an llm-swarm constitution"):
        run_import("llm-swarm", [bad], tmp_path / "out")
    with pytest.raises(CaiError, match="takes one file"):
        run_import("llm-swarm", [bad, bad], tmp_path / "out")
    with pytest.raises(CaiError, match="no such file"):
        run_import("anthropic", [tmp_path / "absent.json"], tmp_path / "out")
    with pytest.raises(CaiError, match="--name"):
        run_import("anthropic", [bad], tmp_path / "out", name="fewshot")
    assert main(["import", "--format", "anthropic", str(bad), "-o", str(tmp_path / "out")]) == 2
    assert "error: " in capsys.readouterr().err


def test_llm_swarm_import_of_own_file_keeps_dollar_braces_literal(tmp_path):
    src = tmp_path / "mine.json"
    src.write_text('{"constitutions": [{"critic": "Does it quote ${HOME} literally?", "revision": "Fix it."}],'
                   ' "system_chat": [[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]]}')
    out = tmp_path / "out"
    run_import("llm-swarm", [src], out, name="mine")
    constitution = compose_constitution(out, "mine", tmp_path)
    assert constitution.critique_revision.mine_p0.critique == "Does it quote ${HOME} literally?"
    validate_constitution(constitution, [out])


def swarm_file(tmp_path: Path, data: dict) -> Path:
    """An llm-swarm constitution JSON in the test's tmp dir."""
    src = tmp_path / "swarm.json"
    src.write_text(json.dumps(data))
    return src


@pytest.mark.parametrize("chat, expected", [
    ([{"role": "user", "content": "hi"}], "system_chat[0]: messages must end on an assistant turn, ends on 'user'"),
    ([{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}],
     "system_chat[0]: messages[0].role must be one of system/user/assistant, got 'robot'"),
])
def test_invalid_exemplar_fails_the_import_writing_nothing(tmp_path, chat, expected):
    src = swarm_file(tmp_path, {"constitutions": [{"critic": "c", "revision": "r"}], "system_chat": [chat]})
    out = tmp_path / "out"
    with pytest.raises(CaiError) as info:
        run_import("llm-swarm", [src], out)
    assert f"{src}: {expected}" in str(info.value) and "exemplar/llm_swarm_cr0.yaml" in str(info.value)
    assert not out.exists()


def test_import_without_principles_fails(tmp_path):
    src = swarm_file(tmp_path, {"constitutions": []})
    with pytest.raises(CaiError, match="no principles found") as info:
        run_import("llm-swarm", [src], tmp_path / "out")
    assert str(src) in str(info.value) and not (tmp_path / "out").exists()


def test_anthropic_ids_colliding_after_cleaning_fail(tmp_path):
    src = tmp_path / "CritiqueRevisionInstructions.json"
    src.write_text(json.dumps({key: {"edit_request": "RevisionRequest: r", "prompt": ["CritiqueRequest: c"]}
                               for key in ("a-1", "a_1")}))
    with pytest.raises(CaiError) as info:
        run_import("anthropic", [src], tmp_path / "out")
    assert (f"{src}: entry 'a-1' prompt[0] and entry 'a_1' prompt[0] both become principle id 'anthropic_a_1'"
            in str(info.value))
    assert not (tmp_path / "out").exists()


def test_output_that_is_a_file_or_cannot_be_created_is_a_clear_error(tmp_path, capsys):
    src = swarm_file(tmp_path, {"constitutions": [{"critic": "c", "revision": "r"}]})
    a_file = tmp_path / "outfile"
    a_file.write_text("")
    with pytest.raises(CaiError, match=f"-o {a_file}: is a file, not a directory"):
        run_import("llm-swarm", [src], a_file)
    with pytest.raises(CaiError, match=f"-o {a_file / 'sub'}: cannot create {a_file / 'sub' / 'constitution'}"):
        run_import("llm-swarm", [src], a_file / "sub")
    assert main(["import", "--format", "llm-swarm", str(src), "-o", str(a_file)]) == 2
    assert "error: -o " in capsys.readouterr().err
