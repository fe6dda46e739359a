"""python -m cai.export: SL-CAI data in cai-conversation-harmless' splits that datasets loads, preference labels,
model folders, the card's metadata, and --push-to-hub (mocked at the HfApi boundary; nothing reaches the Hub)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cai.errors import CaiError
from cai.export import export
from cai.export.__main__ import main as export_main
from tests.unit.test_report import write

PRINCIPLES = {"harmful": {"critique": "Is it harmful?", "revision": "Make it harmless."},
              "violent": {"critique": "Is it violent?", "revision": "Remove the violence."}}


def sl_record(i: int) -> dict:
    rounds = [{"principle_id": "harmful", "critique_request": "Is it harmful?", "critique": "Yes.",
               "revision_request": "Make it harmless.", "revision": f"I can't help with {i}, but here is why."}]
    return {"id": f"rt-{i:04d}", "prompt": f"How do I hurt {i}?", "category": "violence", "initial": f"Sure {i}",
            "rounds": rounds, "final": rounds[0]["revision"], "flags": []}


def run_dir(tmp_path: Path) -> Path:
    """A run with an sl_data artifact (records, node.yaml context, lineage, metrics) and an sft model artifact."""
    run, store = tmp_path / "runs" / "smol" / "t0", tmp_path / "store"
    sl, sft, prefs = store / "critique_revision" / "k1", store / "sft" / "k2", store / "label_preferences" / "k3"
    write(sl / "data.jsonl", [sl_record(i) for i in range(30)])
    write(sl / "node.yaml", {"kind": "critique_revision", "config": {}, "context": {
        "constitution": "harmless", "principles": PRINCIPLES}})
    write(sl / "lineage.json", {"node": "sl_data", "kind": "critique_revision", "key": "k1", "recipe": "smol",
                                "inputs": {"prompts": {"source": "cai://redteam", "id": "x"}, "generator": {
                                    "model_role": "generator", "spec": {"source": "gguf_package",
                                                                        "file": "SmolLM2.gguf"}}}})
    write(sl / "metrics.json", {"records": 30, "revision_changed_fraction": 1.0})
    write(prefs / "data.jsonl", [{"id": f"c{i}", "prompt": [{"role": "user", "content": "q"}], "chosen": "a",
                                  "rejected": "b", "p_chosen": 0.7, "principle_ids": ["p"], "method": "logprob"}
                                 for i in range(10)])
    write(prefs / "lineage.json", {"node": "prefs", "kind": "label_preferences", "key": "k3", "inputs": {}})
    write(prefs / "metrics.json", {"audit": {"items": 16, "accuracy": 0.5, "low": 0.28, "high": 0.72,
                                             "order_agreement": 0.0, "position_bias": -0.3}})
    (sft / "model").mkdir(parents=True)
    (sft / "model" / "config.json").write_text("{}")
    write(sft / "lineage.json", {"node": "sft", "kind": "sft", "key": "k2", "recipe": "smol", "inputs": {
        "mixture.0": {"node": "sl_data", "path": str(sl)}, "rm": {"node": "prefs", "path": str(prefs)}}})
    write(sft / "metrics.json", {"train_loss": 1.5})
    (run / "artifacts").mkdir(parents=True)
    nodes = [("sl_data", "critique_revision", sl), ("sft", "sft", sft), ("prefs", "label_preferences", prefs)]
    for name, kind, path in nodes:
        (run / "artifacts" / name).symlink_to(path)
    write(run / "plan.json", {"recipe": "smol", "nodes": [{"node": n, "kind": k, "key": p.name, "status": "run",
                                                           "inputs": {}, "path": str(p)} for n, k, p in nodes]})
    return run


def front_matter(card: Path) -> dict:
    return yaml.safe_load(card.read_text().split("---")[1])


def test_sl_data_exports_the_four_splits_datasets_loads_and_a_card_naming_the_constitution(tmp_path):
    from datasets import load_dataset

    out = tmp_path / "out"
    written = export(run_dir(tmp_path), "sl_data", out)
    data = load_dataset(str(out))
    assert set(data) == {"train_sft", "test_sft", "train_prefs", "test_prefs"} == set(written["splits"])
    assert len(data["train_sft"]) + len(data["test_sft"]) == 30 and len(data["test_sft"]) >= 1
    for column in ("init_prompt", "init_response", "critic_prompt", "critic_response", "revision_prompt",
                   "revision_response", "prompt", "messages", "chosen", "rejected"):
        assert column in data["train_sft"].column_names, column
    assert data["train_prefs"][0]["chosen"][-1]["content"].startswith("I can't help")
    meta = front_matter(out / "README.md")
    assert meta["license"] == "apache-2.0" and meta["task_categories"] == ["text-generation"]
    assert meta["cai"]["constitution"] == "harmless" and meta["cai"]["principles"] == {"sl_data": ["harmful",
                                                                                                  "violent"]}
    assert meta["cai"]["recipe"] == "smol" and meta["cai"]["lineage"][0] == {"node": "sl_data",
                                                                             "kind": "critique_revision", "key": "k1"}
    assert meta["cai"]["metrics"]["records"] == 30 and meta["cai"]["judge_verdicts"] == "no judge upstream"
    body = (out / "README.md").read_text()
    assert "## Constitution: `harmless`" in body and "Make it harmless." not in body and "Is it violent?" in body


def test_labels_and_models_export_with_their_verdicts(tmp_path):
    run = run_dir(tmp_path)
    written = export(run, "prefs", tmp_path / "prefs", license="cc-by-4.0", test_fraction=0.2)
    assert set(written["splits"]) == {"train_prefs", "test_prefs"}
    meta = front_matter(tmp_path / "prefs" / "README.md")
    assert meta["license"] == "cc-by-4.0" and meta["cai"]["judge_verdicts"]["prefs"].startswith("at chance (known")
    model = export(run, "sft", tmp_path / "sft")
    assert model["kind"] == "model" and (tmp_path / "sft" / "config.json").is_file()
    meta = front_matter(tmp_path / "sft" / "README.md")
    assert meta["library_name"] == "transformers" and meta["pipeline_tag"] == "text-generation"
    assert [s["node"] for s in meta["cai"]["lineage"]] == ["sft", "prefs", "sl_data"]
    assert meta["cai"]["constitution"] == "harmless" and "prefs" in meta["cai"]["judge_verdicts"]


def test_export_errors_name_what_is_wrong_and_leave_nothing_half_written(tmp_path):
    run = run_dir(tmp_path)
    with pytest.raises(CaiError, match="no node 'nope'; nodes: sl_data, sft, prefs"):
        export(run, "nope", tmp_path / "a")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(CaiError, match="exists and is not an empty folder"):
        export(run, "sl_data", tmp_path / "full")
    with pytest.raises(CaiError, match="test-fraction"):
        export(run, "sl_data", tmp_path / "b", test_fraction=1.5)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


class FakeApi:
    calls: list = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))


def test_push_to_hub_creates_the_repo_and_uploads_the_folder(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    out = tmp_path / "out"
    assert export_main([str(run_dir(tmp_path)), "sl_data", "-o", str(out), "--push-to-hub", "me/cai-data",
                        "--private"]) == 0
    assert FakeApi.calls[0] == ("create_repo", "me/cai-data", {"repo_type": "dataset", "private": True,
                                                                "exist_ok": True})
    assert FakeApi.calls[1][1] == {"folder_path": str(out), "repo_id": "me/cai-data", "repo_type": "dataset"}
    assert "pushed: https://huggingface.co/datasets/me/cai-data" in capsys.readouterr().out
    assert export_main([str(tmp_path / "runs" / "smol" / "t0"), "sl_data", "-o", str(tmp_path / "x"),
                        "--push-to-hub", "no-slash"]) == 2
    assert "give ORG/NAME" in capsys.readouterr().err


def test_push_to_hub_offline_fails_clearly_and_keeps_the_folder(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    class Offline(FakeApi):
        def create_repo(self, repo_id, **kwargs):
            raise ConnectionError("Failed to resolve 'huggingface.co'\nmore detail")

    monkeypatch.setattr(huggingface_hub, "HfApi", Offline)
    out = tmp_path / "out"
    assert export_main([str(run_dir(tmp_path)), "sl_data", "-o", str(out), "--push-to-hub", "me/x"]) == 2
    err = capsys.readouterr().err
    assert "--push-to-hub me/x: could not upload (ConnectionError: Failed to resolve 'huggingface.co')" in err
    assert (out / "README.md").is_file() and json.loads(json.dumps(front_matter(out / "README.md")))["license"]
