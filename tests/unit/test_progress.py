"""Progress lines: token throughput only for stages that generate."""
from __future__ import annotations

from types import SimpleNamespace

from cai.progress import StageProgress


def progress_lines(capsys, generated_per_prompt: int) -> str:
    engine = SimpleNamespace(stats=SimpleNamespace(generated_tokens=0))
    with StageProgress("node", total=2, done=0, engine=engine) as progress:
        for _ in range(2):
            engine.stats.generated_tokens += generated_per_prompt
            progress.advance(1)
    return capsys.readouterr().err


def test_generating_stages_show_tokens_per_second(capsys):
    assert "tok/s" in progress_lines(capsys, 10) and "2/2 prompts" in progress_lines(capsys, 10)


def test_scoring_stages_show_no_zero_token_rate(capsys):
    text = progress_lines(capsys, 0)
    assert "prompts/s" in text and "tok/s" not in text
