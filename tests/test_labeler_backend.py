"""The embedding labeler end to end: a job that learns from a labels file, submitted from the
command line to the embedded backend over real HTTP (openai SDK), collected, evaluated with its
examples left out, repeated byte for byte, and followed by task 2."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import openai
import pandas as pd

from conftest import finish, service_for
from test_labeler import TASK1_LABELS, TASK2_LABELS
from core.cli import main
from core.evaluate import run_evaluation
from core.local import LocalBackend
from core.local.labeler import examples_sha256, labeler_model
from core.local.labeler.examples import examples_from_labels, job_examples_path
from core.settings import Settings
from core.tasks import ASSETIZATION_FEATURES, INVESTMENT_ACTIVITY

T1, T2 = INVESTMENT_ACTIVITY.name, ASSETIZATION_FEATURES.name
REPORT = "FfBF_Tester_Annual_Report_2024.pdf"
INPUT = f"""pdf_file_name,paragraph_text
{REPORT},"In 2024 we put EUR 3 million into a fund that restores peat bogs, and we bought the land."
{REPORT},Biodiversity is important for all of us.
{REPORT},Nature matters to everyone.
"""


def test_a_job_learns_from_a_labels_file_end_to_end(tmp_path: Path, settings: Settings,
                                                     backend: LocalBackend) -> None:
    service = service_for(backend, settings)
    inputs, labels1, labels2 = tmp_path / "paragraphs.csv", tmp_path / "task1.csv", tmp_path / "task2.csv"
    inputs.write_text(INPUT, encoding="utf-8")
    labels1.write_text(TASK1_LABELS, encoding="utf-8")
    labels2.write_text(TASK2_LABELS, encoding="utf-8")
    expected_set = examples_from_labels(labels1, task=T1)

    out, err = io.StringIO(), io.StringIO()
    code = main(["submit", "--task", T1, "--input-file", str(inputs), "--examples", str(labels1)], out=out, err=err,
                service=service)
    assert code == 0, err.getvalue()
    said = out.getvalue()
    assert f"model {labeler_model(expected_set.sha256)}" in said
    assert "Expected agreement (2-fold cross-validation of the embedding labeler" in said
    assert "  score: n=4, Cohen's kappa" in said  # printed before the job was submitted
    assert said.index("Expected agreement") < said.index("Submitted job")

    job = service.list_jobs()[0]
    assert job.model == labeler_model(expected_set.sha256)
    kept = job_examples_path(job.job_dir).read_bytes()
    assert hashlib.sha256(kept).hexdigest() == examples_sha256(job.model) == expected_set.sha256
    sdk = openai.OpenAI(api_key=backend.api_key, base_url=backend.base_url, max_retries=0)
    uploaded = [f for f in sdk.files.list(purpose="user_data")]
    assert [sdk.files.content(f.id).content for f in uploaded] == [kept]  # how the backend got them

    finish(service, job.id)
    frame = service.collect(job.id).frame
    assert frame["status"].eq("succeeded").all() and frame["model"].eq(job.model).all()
    assert frame["explanation"].str.startswith("Embedding labeler (multilingual-e5-small").all()
    assert frame["score"].tolist()[:2] == [1, 0]

    # Evaluate leaves out the paragraphs the labeler learned from, and says so
    evaluation_labels = tmp_path / "human.csv"
    evaluation_labels.write_text(TASK1_LABELS + "\"In 2024 we put EUR 3 million into a fund that restores peat bogs, "
                                 "and we bought the land.\",1\nBiodiversity is important for all of us.,0\n",
                                 encoding="utf-8")
    evaluation = run_evaluation(service, job.id, evaluation_labels, n_resamples=50, save=False)
    assert len(evaluation.examples_excluded) == 4 and evaluation.examples_sha256 == expected_set.sha256
    assert evaluation.matched == 2 and evaluation.unmatched_rows == 0  # the example in the job is not "unlabelled"
    assert "4 labelled paragraphs left out: the job's embedding labeler learned from them" in "\n".join(
        evaluation.summary_lines())
    assert evaluation.to_record()["examples_excluded"] == 4

    # the same inputs and examples give the same answers, byte for byte
    again = service.submit(service.prepare(T1, inputs=[inputs], examples=labels1))
    finish(service, again.id)
    second = service.collect(again.id).frame
    columns = ["custom_id", "paragraph_text", "score", "explanation", "model"]
    assert second[columns].to_csv(index=False).encode() == frame[columns].to_csv(index=False).encode()

    # task 2 on the paragraphs scored 1, from its own examples
    prep2 = service.prepare(T2, parent=job.id, examples=labels2)
    job2 = service.submit(prep2)
    finish(service, job2.id)
    collected2 = service.collect(job2.id)
    table = pd.read_csv(collected2.output_files[0], keep_default_na=False)
    assert len(table) == 1 and table["status"].eq("succeeded").all()
    assert job2.model == labeler_model(examples_from_labels(labels2, task=T2).sha256) != job.model
    for column in ASSETIZATION_FEATURES.score_columns:
        assert set(table[column]) <= {0, 1}
