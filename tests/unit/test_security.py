"""Configs cannot import code or smuggle secrets into provenance files; trust_remote_code is shown; nothing loads a
pickle (checkpoints load through safetensors or `weights_only`)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cai.config import compose_run
from cai.errors import CaiError
from cai.runner import run

CAI = Path(__file__).resolve().parents[2] / "cai"
FAKE_KEY = "sk-FAKE-unit-0123456789abcdef"


@pytest.mark.parametrize("override", ["+pipeline.sl_data._target_=os.system",
                                      "+models.generator.engine_options._target_=os.system",
                                      "+pipeline.sft.trainer._target_=builtins.eval",
                                      "+pipeline.sft.mixture.0._target_=os.system"])
def test_a_target_anywhere_in_the_config_is_refused_naming_the_key(override, tmp_path):
    key = override[1:].split("=")[0]
    with pytest.raises(CaiError, match=re.escape(f"{key}: `_target_` is not allowed")):
        run(compose_run(["recipe=tiny", "dry_run=true", f"home={tmp_path}", override]), tmp_path / "run")
    assert not (tmp_path / "run" / "plan.json").exists()


@pytest.mark.parametrize("override", ["+models.judge.engine_options.api_key=${oc.env:MY_FAKE_KEY_VAR}",
                                      f"models.judge.system_prompt=use {FAKE_KEY} please"])
def test_a_secret_copied_into_the_config_is_refused_without_quoting_it(override, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_FAKE_KEY_VAR", FAKE_KEY)
    cfg = compose_run(["recipe=tiny", "dry_run=true", f"home={tmp_path}", "models.judge.api_key_env=MY_FAKE_KEY_VAR",
                       override])
    with pytest.raises(CaiError) as error:
        run(cfg, tmp_path / "run")
    assert "holds the value of $MY_FAKE_KEY_VAR" in str(error.value) and FAKE_KEY not in str(error.value)
    assert str(error.value).startswith("models.judge.")


def test_naming_the_variable_is_fine_and_recorded_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_FAKE_KEY_VAR", FAKE_KEY)
    run(compose_run(["recipe=tiny", "dry_run=true", f"home={tmp_path}", "models.judge.api_key_env=MY_FAKE_KEY_VAR"]),
        tmp_path / "run")
    assert FAKE_KEY not in (tmp_path / "run" / "plan.json").read_text()


def test_trust_remote_code_is_in_the_plan_and_the_report(tmp_path):
    from cai.report.build import build_report

    run(compose_run(["recipe=tiny", "dry_run=true", f"home={tmp_path}", "targets=[sl_data]",
                     "models.generator.trust_remote_code=true"]), tmp_path / "run")
    plan = json.loads((tmp_path / "run" / "plan.json").read_text())
    assert plan["trust_remote_code"] == ["models.generator"]
    report = build_report(tmp_path / "run").read_text()
    assert "**trust_remote_code: true** for `models.generator`" in report
    run(compose_run(["recipe=tiny", "dry_run=true", f"home={tmp_path}", "targets=[sl_data]"]), tmp_path / "plain")
    assert json.loads((tmp_path / "plain" / "plan.json").read_text())["trust_remote_code"] == []


def test_a_training_body_outside_cai_is_refused():
    from cai.launch import resolve

    assert resolve("cai.stages.sft:train").__name__ == "train"
    with pytest.raises(CaiError, match="not a module of cai or of a registered stage plugin"):
        resolve("os:system")


UNSAFE = [(r"torch\.load\((?![^)]*weights_only=True)", "torch.load without weights_only=True"),
          (r"\bpickle\.loads?\(|\bdill\.|\bjoblib\.load", "pickle loading"),
          (r"yaml\.(unsafe_)?load\((?![^)]*Loader=yaml\.SafeLoader)", "yaml.load (use safe_load)"),
          (r"\binstantiate\(|hydra\.utils\.call\(", "Hydra instantiate from a config")]


@pytest.mark.parametrize("pattern,what", UNSAFE, ids=[w for _, w in UNSAFE])
def test_no_module_loads_untrusted_code_or_pickles(pattern, what):
    found = [f"{p.relative_to(CAI.parent)}:{n}" for p in sorted(CAI.rglob("*.py"))
             for n, line in enumerate(p.read_text().splitlines(), 1) if re.search(pattern, line)]
    assert found == [], f"{what}: {found}"
