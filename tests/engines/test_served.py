"""vLLM in process and behind a real `vllm serve`, against the hf engine on the same SmolLM2 (float32): the same
greedy replies and option log-probs, the same HHH labels; a server that dies mid-run is named and the rerun resumes;
the API key reaches no file. Marked vllm/server: `pytest -m "vllm or server" tests/engines`."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from cai.errors import CaiError
from cai.registry import get_engine
from cai.stage_api import Input, StageContext
from cai.stages.label_preferences import LabelPreferencesConfig, label_preferences
from tests.conftest import ROOT, SHARED
from tests.engines.conftest import SERVER_KEY, served_spec, smol_spec, vllm_spec

GREEDY = OmegaConf.create({"temperature": 1.0, "top_p": 1.0, "top_k": 0, "do_sample": False,
                           "max_new_tokens": 24, "repetition_penalty": 1.1})
CHATS = [[{"role": "user", "content": text}] for text in (
    "How do I pick a lock?", "Give me a tip for a job interview.", "What is the capital of Australia?",
    "Write one sentence about rain.", "How can I get back at a coworker who embarrassed me?")]
PROMPTS = ["Which is the best answer?\n\nThe answer is: (",
           [{"role": "user", "content": "Is Canberra the capital of Australia?"},
            {"role": "assistant", "content": "The answer is: ("}]]
TOLERANCE = 1e-3  # float32 on both sides: measured within 2e-5 (see the test's message on failure)


@pytest.fixture(scope="module")
def hf(smol_home):
    with get_engine("hf").factory(smol_spec("hf"), smol_home) as engine:
        yield engine


ENGINES = [pytest.param("vllm", marks=pytest.mark.vllm), pytest.param("openai", marks=pytest.mark.server)]


@pytest.fixture(params=ENGINES)
def other(request, smol_home):
    """The vllm engine in process, or the openai engine against the test's vllm serve."""
    spec = vllm_spec() if request.param == "vllm" else served_spec(request.getfixturevalue("vllm_server"))
    with get_engine(request.param).factory(spec, smol_home) as engine:
        yield request.param, engine


def test_same_greedy_replies_and_option_logprobs_as_hf(hf, other):
    name, engine = other
    assert engine.generate(CHATS, GREEDY, [0] * len(CHATS)) == hf.generate(CHATS, GREEDY, [0] * len(CHATS))
    options = [["A", "B"], ["A", "B"]], [["A) Canberra", "B) Sydney, the largest city"]] * 2
    for opts in options:  # one-token options (next-token log-probs), then several tokens (continuations)
        got, want = engine.choice_logprobs(PROMPTS, opts), hf.choice_logprobs(PROMPTS, opts)
        diffs = [abs(g - w) for gr, wr in zip(got, want) for g, w in zip(gr, wr)]
        assert max(diffs) < TOLERANCE, f"{name}: max |log-prob difference| {max(diffs):.2e}"


def test_hhh_labels_agree_with_hf_but_near_ties(hf, other):
    from cai.feedback.scorer import score_choices
    from cai.stages.feedback_accuracy import load_rows, to_choice

    evals = SHARED / "evals" / "ConstitutionalHarmlessnessPaper" / "438HHHEvaluations.jsonl"
    if not evals.is_file():
        pytest.skip(f"{evals} is not here (the shared folder beside the checkout)")
    choices = [to_choice(r) for r in load_rows(f"file://{evals}")[:24]]
    name, engine = other
    want, _ = score_choices(hf, choices, "logprob", "raw", GREEDY, [0] * len(choices))
    got, _ = score_choices(engine, choices, "logprob", "raw", GREEDY, [0] * len(choices))
    disagree = [i for i, (g, w) in enumerate(zip(got, want)) if g.index(max(g)) != w.index(max(w))]
    near_ties = [i for i in disagree if abs(sorted(want[i])[-1] - sorted(want[i])[-2]) < 0.01]
    assert disagree == near_ties, f"{name}: rows {disagree} disagree ({near_ties} near-ties)"


PAIRS = [{"id": f"p{i}", "prompt": [{"role": "user", "content": f"Question {i}: how do I stay safe online?"}],
          "responses": [f"Use strong passwords ({i}).", f"Just click every link ({i})."],
          "category": "", "source": "test"} for i in range(12)]
PRINCIPLES = {"safe": {"text": "Which response is safer?", "weight": 1.0, "tags": []},
              "kind": {"text": "Which response is kinder?", "weight": 1.0, "tags": []}}


def label_ctx(tmp_path: Path, spec, workdir: Path) -> StageContext:
    pairs = tmp_path / "pairs"
    pairs.mkdir(exist_ok=True)
    (pairs / "data.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    cfg = OmegaConf.merge(OmegaConf.structured(LabelPreferencesConfig), {"ensemble": 2, "chunk_size": 2,
                                                                         "fewshot": False})
    inputs = {"pairs": Input("node", "pairs", path=pairs), "judge": Input("model", "judge", spec=spec)}
    workdir.mkdir(exist_ok=True)
    return StageContext("prefs", cfg, inputs, workdir, tmp_path, 0, {"principles": PRINCIPLES})


@pytest.mark.server
def test_a_server_that_dies_mid_run_is_named_and_the_rerun_resumes(vllm_server, tmp_path):
    spec = served_spec(vllm_server)
    whole = tmp_path / "whole"
    label_preferences(label_ctx(tmp_path, spec, whole))
    work = tmp_path / "work"
    ctx = label_ctx(tmp_path, spec, work)
    original = ctx.engine

    def engine_that_kills_the_server_after_two_chunks(slot):
        engine = original(slot)
        score = engine.choice_logprobs

        def choice_logprobs(prompts, options):
            if len((work / "data.jsonl").read_text().splitlines() if (work / "data.jsonl").exists() else []) >= 4:
                vllm_server.kill()
            return score(prompts, options)

        engine.choice_logprobs = choice_logprobs
        return engine

    ctx.engine = engine_that_kills_the_server_after_two_chunks
    try:
        with pytest.raises(CaiError, match=vllm_server.url.replace(".", r"\.")):
            label_preferences(ctx)
        done = len((work / "data.jsonl").read_text().splitlines())
        assert 4 <= done < len(PAIRS)
    finally:
        vllm_server.start()  # the same URL again, for the rerun and the tests after this one
    label_preferences(label_ctx(tmp_path, spec, work))
    assert (work / "data.jsonl").read_bytes() == (whole / "data.jsonl").read_bytes()


@pytest.mark.server
def test_the_api_key_reaches_no_file(vllm_server, tmp_path):
    evals = SHARED / "evals" / "ConstitutionalHarmlessnessPaper" / "438HHHEvaluations.jsonl"
    if not evals.is_file():
        pytest.skip(f"{evals} is not here")
    home = tmp_path / "home"
    args = ["recipe=hhh_eval", "pipeline.hhh.limit=6", "models.judge.engine=openai", "models.judge.dtype=float32",
            f"models.judge.base_url={vllm_server.url}", "models.judge.api_key_env=CAI_TEST_SERVER_KEY",
            "+models.judge.engine_options.model=smollm2"]
    env = {**os.environ, "CAI_HOME": str(home), "CAI_TEST_SERVER_KEY": SERVER_KEY}
    proc = subprocess.run([sys.executable, "-m", "cai", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "metrics.json" for p in files)
    leaked = [str(p) for p in files if SERVER_KEY.encode() in p.read_bytes()]
    assert not leaked and SERVER_KEY not in proc.stdout + proc.stderr


def test_an_unreachable_server_is_named_at_plan_time(tmp_path, monkeypatch):
    from cai import graph
    from cai.config import compose_run

    pytest.importorskip("openai")
    monkeypatch.setenv("CAI_SHARED", str(tmp_path))
    (tmp_path / "evals" / "ConstitutionalHarmlessnessPaper").mkdir(parents=True)
    (tmp_path / "evals" / "ConstitutionalHarmlessnessPaper" / "438HHHEvaluations.jsonl").write_text(
        json.dumps({"prompt": "Q? The answer is:", "corrects": ["yes"], "incorrects": ["no"]}) + "\n")
    cfg = compose_run(["recipe=hhh_eval", "models.judge.engine=openai",
                       "models.judge.base_url=http://127.0.0.1:9/v1", "+models.judge.engine_options.model=m"])
    with pytest.raises(CaiError, match=r"server http://127\.0\.0\.1:9/v1 did not answer"):
        graph.plan(cfg)
    cfg.models.judge.api_key_env = "CAI_TEST_UNSET_KEY_VAR"
    with pytest.raises(CaiError, match="CAI_TEST_UNSET_KEY_VAR is not set"):
        graph.plan(cfg)
