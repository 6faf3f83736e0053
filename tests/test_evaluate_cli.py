"""Evaluate, compare and manifest end to end: real jobs on the sample paragraphs through the
in-process local backend over real HTTP, then the command line as a user runs it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from conftest import finish, make_backend, sample_files, service_for, run_cli as run, run_cli_json as run_json
from core.evaluate import latest_evaluation, list_evaluations, run_evaluation
from core.jobs import JobService
from core.local.baseline import BASELINE_MODEL

TASK1 = "investment_activity_classification"
ISSUE_KEYS = {"job_id", "task", "matched", "ties_excluded", "conflicts_excluded", "unmatched_labels",
              "unmatched_rows", "metrics"}
METRIC_KEYS = {"n", "accuracy", "precision", "recall", "f1", "cohen_kappa", "cohen_kappa_ci", "krippendorff_alpha",
               "krippendorff_alpha_ci", "f1_ci", "mcc", "majority_baseline_accuracy", "confusion"}


def finished_job(service: JobService) -> tuple[str, pd.DataFrame]:
    job = service.submit(service.prepare(TASK1, inputs=sample_files()))
    finish(service, job.id)
    return job.id, service.collect(job.id).frame


def human_labels(results: pd.DataFrame, path: Path) -> dict[str, int]:
    """A labels file for the first 30 distinct paragraphs: annotator A agrees with the model
    except on two it scored 1 and one it scored 0; annotator B labels the first ten like A,
    retyped with line breaks; one paragraph is not in the job. Returns the expected confusion."""
    distinct = results.drop_duplicates("paragraph_text").reset_index(drop=True)
    ones = distinct.index[distinct["score"] == 1][:2].tolist()
    zero = distinct.index[distinct["score"] == 0][:1].tolist()
    assert len(ones) == 2 and len(zero) == 1, "the sample must give the baseline both answers"
    chosen = sorted(set(range(30)) | set(ones) | set(zero))
    rows = []
    tn = fp = fn = tp = 0
    for i in chosen:
        text, model = distinct.loc[i, "paragraph_text"], int(distinct.loc[i, "score"])
        human = 1 - model if i in ones + zero else model
        tn += human == 0 and model == 0
        fp += human == 0 and model == 1
        fn += human == 1 and model == 0
        tp += human == 1 and model == 1
        rows.append({"annotator": "A", "paragraph_text": text, "pdf_file_name": distinct.loc[i, "pdf_file_name"],
                     "score": ["no", "yes"][human]})
        if i < 10:
            rows.append({"annotator": "B", "paragraph_text": text.replace(" ", "\n", 2), "pdf_file_name": "",
                         "score": str(human)})
    rows.append({"annotator": "A", "paragraph_text": "A paragraph nobody sent.", "pdf_file_name": "", "score": "1"})
    pd.DataFrame(rows).to_csv(path, index=False, sep=";", encoding="utf-8-sig")
    return {"tn": tn, "fp": fp, "fn": fn, "tp": tp, "n": len(chosen), "paragraphs": len(distinct)}


def test_evaluate_command_prints_the_issue_shape(service: JobService, tmp_path: Path) -> None:
    job_id, results = finished_job(service)
    expected = human_labels(results, tmp_path / "labels.csv")
    body = run_json(service, "evaluate", "--job", job_id, "--labels", str(tmp_path / "labels.csv"),
                    "--resamples", "200", "--min-group", "3")
    assert body["ok"] is True
    evaluation = body["evaluation"]
    assert ISSUE_KEYS <= set(evaluation) and evaluation["job_id"] == job_id and evaluation["task"] == TASK1
    assert (evaluation["matched"], evaluation["ties_excluded"], evaluation["conflicts_excluded"],
            evaluation["unmatched_labels"]) == (expected["n"], 0, 0, 1)
    assert evaluation["unmatched_rows"] == expected["paragraphs"] - expected["n"]
    assert all(isinstance(evaluation[k], int) for k in ISSUE_KEYS - {"job_id", "task", "metrics"})
    figures = evaluation["metrics"]["score"]
    assert METRIC_KEYS <= set(figures) and figures["n"] == expected["n"]
    assert figures["confusion"] == [[expected["tn"], expected["fp"]], [expected["fn"], expected["tp"]]]
    assert figures["accuracy"] == pytest.approx((expected["n"] - 3) / expected["n"])
    for name in ("cohen_kappa_ci", "krippendorff_alpha_ci", "f1_ci"):
        low, high = figures[name]
        assert isinstance(low, float) and isinstance(high, float) and low <= high
    # A and B agree on the ten paragraphs both labelled (B's copies were retyped with line breaks)
    human = evaluation["human_agreement"]["score"]
    assert human["units"] == 10 and human["pairs"][0]["agreement"] == 1.0
    assert evaluation["breakdowns"]["investor"]["score"]["groups"]
    # saved with the job, and the manifest shows it
    saved = Path(evaluation["saved_to"])
    assert saved.parent == Path(service.get(job_id).job_dir) / "evaluations" and saved.is_file()
    assert latest_evaluation(saved.parent.parent)["matched"] == expected["n"]

    code, text, _ = run(service, "evaluate", "--job", job_id, "--labels", str(tmp_path / "labels.csv"),
                        "--resamples", "100", "--no-save")
    assert code == 0 and "Cohen's kappa" in text and f"{expected['n']} compared" in text
    assert len(list_evaluations(saved.parent.parent)) == 1  # --no-save kept nothing


def test_evaluate_errors_are_one_line(service: JobService, tmp_path: Path) -> None:
    job_id, _ = finished_job(service)
    bad = tmp_path / "bad.csv"
    bad.write_text("paragraph_text,verdict\nsomething,1\n", encoding="utf-8")
    code, out, err = run(service, "evaluate", "--job", job_id, "--labels", str(bad), "--json")
    assert code == 1 and json.loads(out)["ok"] is False
    assert err.startswith("error: ") and "bad.csv" in err and "--label-column" in err
    code, _, err = run(service, "evaluate", "--job", job_id, "--labels", str(bad), "--label-column", "verdict")
    assert code == 1 and "none of the 1 labelled paragraphs" in err
    code, _, err = run(service, "evaluate", "--job", "job_nope", "--labels", str(bad))
    assert code == 1 and "job_nope" in err


def test_compare_two_runs_and_manifest(service: JobService, tmp_path: Path) -> None:
    first, results = finished_job(service)
    second, _ = finished_job(service)
    body = run_json(service, "compare", "--job", first, "--job", second, "--resamples", "100")
    comparison = body["comparison"]
    assert [j["job_id"] for j in comparison["jobs"]] == [first, second]
    agreement = comparison["agreement"]["score"]
    distinct = results["paragraph_text"].nunique()
    # the rules baseline answers the same paragraph the same way every time: perfect stability
    assert agreement["units"] == distinct and agreement["krippendorff_alpha"] == 1.0
    assert agreement["pairs"][0]["cohen_kappa"] == 1.0 and comparison["disagreements_count"] == 0
    code, _, err = run(service, "compare", "--job", first, "--job", first)
    assert code == 1 and "two or more different jobs" in err

    human_labels(results, tmp_path / "labels.csv")
    run_json(service, "evaluate", "--job", first, "--labels", str(tmp_path / "labels.csv"), "--resamples", "50")
    manifest_body = run_json(service, "manifest", "--job", first, "--markdown")
    record = manifest_body["manifest"]
    job = service.get(first)
    assert record["job_id"] == first and record["model_requested"] == job.model
    assert record["models_answered"] == {BASELINE_MODEL: job.n_requests}
    assert record["system_fingerprints"] == {BASELINE_MODEL: job.n_requests}
    assert record["settings_sent"]["max_completion_tokens"] == job.max_tokens
    assert record["settings_sent"]["response_format"]["strict"] is True
    assert record["prompts"]["system"]["sha256"] == hashlib.sha256(
        record["prompts"]["system"]["text"].encode()).hexdigest()
    # both inputs were read from disk: their paths and the sha256 of the bytes read are recorded
    assert [i["sha256"] for i in record["inputs"]] == [hashlib.sha256(p.read_bytes()).hexdigest()
                                                       for p in sample_files()]
    assert [i["path"] for i in record["inputs"]] == [str(p) for p in sample_files()]
    assert {i["sha256_from"] for i in record["inputs"]} == {"read"} and all(i["rows_kept"] > 0 for i in record["inputs"])
    assert all(len(b["request_file_sha256"]) == 64 for b in record["batches"])
    assert [b["batch_id"] for b in record["batches"]] == [b.batch_id for b in job.batches]
    assert record["row_counts"]["succeeded"] == job.n_rows
    assert record["evaluation"]["matched"] > 0 and "score" in record["evaluation"]["metrics"]
    markdown = manifest_body["markdown"]
    assert BASELINE_MODEL in markdown and "Cohen's kappa" in markdown and job.batches[0].batch_id in markdown
    code, text, _ = run(service, "manifest", "--job", first)
    assert code == 0 and text.startswith("## Methods record")


def test_uploaded_inputs_are_hashed_not_kept(service: JobService) -> None:
    data = sample_files()[0].read_bytes()
    job = service.submit(service.prepare(TASK1, inputs=[("uploaded.csv", data)]))
    finish(service, job.id)
    record = run_json(service, "manifest", "--job", job.id)["manifest"]  # collects first: it never was
    (upload,) = record["inputs"]
    assert upload["sha256"] == hashlib.sha256(data).hexdigest() and upload["path"] is None  # never on disk
    assert record["row_counts"]["succeeded"] > 0


def test_a_retry_counts_as_part_of_its_job(tmp_path: Path, settings) -> None:
    with make_backend(tmp_path, baseline_delay_seconds=0.4, completion_window_seconds=1.0) as slow:
        service = service_for(slow, settings)
        job = service.submit(service.prepare(TASK1, inputs=sample_files()))
        finish(service, job.id)
        first = service.collect(job.id)
    assert first.counts["expired"] >= 1
    with make_backend(tmp_path) as healthy:
        service = service_for(healthy, settings)
        retry = service.retry(job.id)
        assert retry is not None
        finish(service, retry.id)
        merged = service.collect(job.id).frame
        labels = merged[["paragraph_text", "score"]].drop_duplicates("paragraph_text")
        path = tmp_path / "labels.csv"
        labels.to_csv(path, index=False)
        evaluation = run_evaluation(service, retry.id, path, n_resamples=50)  # the retry's id stands for the job
        assert evaluation.job_id == job.id and evaluation.matched == len(labels)
        assert evaluation.columns["score"].metrics.accuracy == 1.0
        record = run_json(service, "manifest", "--job", retry.id)["manifest"]
    assert record["job_id"] == job.id and [r["job_id"] for r in record["retries"]] == [retry.id]
    assert sum(record["models_answered"].values()) >= job.n_requests  # the retry's answers count too
    assert record["evaluation"]["matched"] == len(labels)
