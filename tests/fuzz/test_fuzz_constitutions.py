"""Constitution files, fuzzed: a user library (one file per principle, comparison and exemplar, as the shipped ones)
with fields missing, wrong types, huge or empty texts, odd unicode, chat roles out of order, unknown keys, files cut
short or binary, ids that clash; used as `--config-dir`-style `hydra.searchpath` + `constitution=fuzzed` by the
sl_data node (critique_revision with few-shot exemplars, scripted engine): it runs, or fails naming file or key."""
from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import given, strategies as st

from cai.config import compose_run
from cai.engines.scripted import ScriptedEngine
from cai.runner import run
from tests.fuzz.outcomes import attempt, finished

TURNS = ["Say hi.", "Go away.", "Say where the reply is rude.", "It is curt.", "Rewrite it kindly.", "Hi there!"]
BASE = {
    "principle": {"critique": "Say where the reply is rude.", "revision": "Rewrite it kindly.", "weight": 1.0,
                  "tags": ["tone"]},
    "comparison": {"text": "Choose the kinder reply.", "weight": 1.0, "tags": []},
    "exemplar": {"messages": [{"role": "user" if i % 2 == 0 else "assistant", "content": t}
                              for i, t in enumerate(TURNS)]},
    "label_exemplar": {"conversation": [{"role": "user", "content": "Say hi."}], "better": "Hello!", "worse": "No.",
                       "principle": None},
}
SECTIONS = {"principle": "critique_revision", "comparison": "comparison", "exemplar": "critique_revision",
            "label_exemplar": "labeling"}
texts = st.one_of(st.text(max_size=30), st.just(""), st.just("   "), st.integers(1, 200_000).map(lambda n: "w " * n),
                  st.text(st.sampled_from("\u202e\u200b\u0301\U0001F600\ufffd\x1b\x07ab{}$"), max_size=20),
                  st.just("Identify ${nope.key} problems."))
wrong = st.one_of(st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(),
                  st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


@st.composite
def mutated(draw, group: str):
    """A valid item of `group` with one or two mutations (or none)."""
    item = {k: (list(v) if isinstance(v, list) else v) for k, v in BASE[group].items()}
    for _ in range(draw(st.integers(0, 2))):
        field = draw(st.sampled_from(sorted(item) or ["x"]))
        change = draw(st.sampled_from(["drop", "wrong", "text", "unknown", "roles", "whole"]))
        if change == "drop":
            item.pop(field, None)
        elif change == "wrong":
            item[field] = draw(wrong)
        elif change == "text":
            item[field] = draw(texts)
        elif change == "unknown":
            item[draw(st.from_regex(r"[a-z]{1,8}", fullmatch=True))] = draw(texts)
        elif change == "roles" and isinstance(item.get("messages", item.get("conversation")), list):
            chat = [dict(m) for m in item.get("messages", item.get("conversation"))]
            chat = draw(st.permutations(chat))
            for message in chat[:draw(st.integers(0, 2))]:
                message["role"] = draw(st.sampled_from(["system", "bot", "", "user", "assistant"]))
            item["messages" if "messages" in item else "conversation"] = chat
        elif change == "whole":
            return draw(st.one_of(texts, wrong))
    return item


@st.composite
def libraries(draw):
    """{relative path: file bytes} of a constitution library named `fuzzed`, and the ids it declares."""
    files, ids = {}, {}
    for group in BASE:
        ids[group] = [f"fz_{group[:3]}{i}" for i in range(draw(st.integers(0 if group != "principle" else 1, 2)))]
        for id_ in ids[group]:
            key = draw(st.sampled_from([id_] * 6 + ["toxic", "other"]))  # sometimes an id that clashes or differs
            files[f"constitution/{group}/{id_}.yaml"] = yaml.safe_dump({key: draw(mutated(group))},
                                                                       allow_unicode=True).encode()
    fewshot = {"defaults": [{f"/constitution/{g}@{SECTIONS[g]}": ids[g]} for g in ("exemplar", "label_exemplar")
                            if ids[g]] + ["_self_"]}
    files["constitution/fewshot/fuzzed.yaml"] = yaml.safe_dump(fewshot).encode()
    head = {"defaults": [{f"{g}@{SECTIONS[g]}": ids[g]} for g in ("principle", "comparison") if ids[g]]
            + [{"fewshot": "fuzzed"}, "_self_"], "name": draw(st.one_of(st.just("fuzzed"), wrong, st.just("")))}
    if draw(st.booleans()):
        head["select"] = draw(st.lists(st.sampled_from(ids["principle"] + ["nope"]), max_size=2))
    files["constitution/fuzzed.yaml"] = yaml.safe_dump(head, allow_unicode=True).encode()
    if draw(st.integers(0, 3)) == 0:  # one file damaged on disk: cut short, binary, empty or a bare list
        victim = draw(st.sampled_from(sorted(files)))
        files[victim] = draw(st.sampled_from([files[victim][:len(files[victim]) // 2], b"\x00\xff\xfe\x9c", b"",
                                              b"- a\n- b\n", b"key: [unclosed\n"]))
    return files, [i for group in ids.values() for i in group]


@given(case=libraries())
def test_a_constitution_library_runs_or_fails_naming_file_or_key(case):
    files, ids = case
    with tempfile.TemporaryDirectory() as tmp:
        lib = Path(tmp) / "conf"
        for name, data in files.items():
            (lib / name).parent.mkdir(parents=True, exist_ok=True)
            (lib / name).write_bytes(data)
        names = [str(lib), *ids, "fuzzed", *(f"constitution.{k}" for k in ("name", "select", "critique_revision",
                                                                            "comparison", "fewshot"))]
        overrides = ["recipe=tiny", f"hydra.searchpath=[file://{lib}]", "constitution=fuzzed", "targets=[sl_data]",
                     "pipeline.sl_data.fewshot=true", "pipeline.sl_data.limit=2", f"home={tmp}/home"]
        composed = {}
        outcome = attempt("constitutions", "compose", lambda: composed.setdefault("cfg", compose_run(overrides)), names)
        if outcome == "ran":
            outcome = attempt("constitutions", "run", lambda: run(composed["cfg"], Path(tmp) / "run",
                                                                  engine_factory=lambda s, h: ScriptedEngine()), names)
        finished("constitutions", outcome)
