"""python -m cai.serve: the vllm serve command for a recipe's model, and the overrides that point a role at it."""
from __future__ import annotations

from cai import serve


def test_own_settings_are_split_from_run_overrides():
    own, overrides = serve.split_args(["role=judge", "port=9001", "recipe=tiny", "models.judge.dtype=float32"])
    assert own == {"role": "judge", "port": "9001", "name": "smollm2"}
    assert overrides == ["recipe=tiny", "models.judge.dtype=float32"]


def test_prints_the_converted_checkpoint_and_the_judge_overrides(tmp_path, capsys):
    code = serve.main(["recipe=tiny", "role=judge", "port=9001", "name=tiny", f"home={tmp_path}"])
    out = capsys.readouterr().out
    folder = next(line for line in out.splitlines() if "api_server" in line).split("--model ")[1].split()[0]
    assert code == 0
    assert folder.startswith(str(tmp_path / "store" / "model")) and (serve.Path(folder) / "config.json").is_file()
    assert "--served-model-name tiny" in out and "--port 9001" in out
    assert "models.judge.base_url=http://127.0.0.1:9001/v1" in out and "engine_options.model=tiny" in out


def test_a_role_the_recipe_lacks_is_named(tmp_path, capsys):
    assert serve.main(["recipe=tiny", "role=critic", f"home={tmp_path}"]) == 2
    assert "role=critic: the recipe has no models.critic" in capsys.readouterr().err


def test_cpu_settings_only_without_a_gpu():
    assert "--enforce-eager" in serve.serve_command("/m", "auto", "8000", "x", on_cpu=True)
    assert "--enforce-eager" not in serve.serve_command("/m", "auto", "8000", "x", on_cpu=False)
