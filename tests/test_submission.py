"""core.submission: per-file checks, prompt copies, task-2 parents, the submit-once fingerprint."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SAMPLES
from core.errors import PromptError
from core.jobs import JobService
from core.prompts import DEFAULT_PROMPT_DIR
from core.submission import (
    UNUSABLE_PROBLEM,
    FileChoice,
    check_inputs,
    choice_key,
    default_input_files,
    fingerprint,
    layout_of,
    parent_choices,
    preview,
    prompt_choices,
    report_table,
    save_prompt_copy,
    source_name,
    usable_sources,
    waiting_message,
    with_choices,
)

TASK1 = "investment_activity_classification"


def test_checks_report_each_file() -> None:
    good = ("a.csv", b"pdf_file_name,paragraph_text\nFfBF_X_R.pdf,hello\nFfBF_X_R.pdf,\n")
    bad = ("b.csv", b"title,body\nx,y\n")
    pdf = ("c.csv", b"%PDF-1.7 binary")
    sources = [good, bad, pdf, good]
    checks = check_inputs(sources)
    assert [c.ok for c in checks] == [True, False, False, False]
    assert "paragraph_text" in checks[1].error and "twice" in checks[3].error
    table = report_table(checks)
    assert table.loc[0, "kept"] == "1" and table.loc[0, "dropped"] == "1"
    assert "empty paragraph_text" in table.loc[0, "why dropped"]
    assert usable_sources(sources, checks) == [good]
    assert list(preview(checks)["file"]) == ["a.csv"]


def test_report_table_unreadable_file_shows_a_dash_not_none() -> None:
    """A file that cannot be read has no counts: the cells say so with a dash (never None/nan),
    and the problem cell points to the full reason (shown above the table) instead of
    repeating it cut off."""
    big = "pdf_file_name,paragraph_text\n" + "".join(f"FfBF_X_R.pdf,paragraph {i}\n" for i in range(1200))
    checks = check_inputs([("bad.csv", b"title,body\nx,y\n"), ("big.csv", big.encode())])
    table = report_table(checks)
    bad, good = table.iloc[0], table.iloc[1]
    assert [bad["rows read"], bad["kept"], bad["dropped"]] == ["–", "–", "–"]
    assert bad["problems"] == UNUSABLE_PROBLEM and bad["why dropped"] == "" and bad["notes"] == ""
    assert "paragraph_text" in checks[0].error  # the full reason, for the message above the table
    assert [good["rows read"], good["kept"], good["dropped"]] == ["1,200", "1,200", "0"]
    assert not table.isna().any().any()
    shown = {str(v) for v in table.to_numpy().ravel()}
    assert not shown & {"None", "nan", "<NA>", "NaN"}, shown


def test_default_input_files(settings) -> None:
    assert [p.name for p in default_input_files(settings, TASK1)] == sorted(p.name for p in SAMPLES.glob("*.csv"))
    assert default_input_files(settings, "assetization_features_scoring") == []


def test_prompt_copies_never_overwrite(settings) -> None:
    defaults = {p: p.read_bytes() for p in DEFAULT_PROMPT_DIR.glob("*.txt")}
    assert [c[0] for c in prompt_choices(settings, TASK1)] == ["default (prompts/)"]
    one = save_prompt_copy(settings, TASK1, system="Be strict.", user_template="Text: {text}", name="strict v1")
    two = save_prompt_copy(settings, TASK1, system="Be lenient.", user_template="{text}", name="strict v1")
    assert one.system_path != two.system_path and Path(one.system_path).read_text().strip() == "Be strict."
    assert "prompts_custom" in one.system_path
    assert len(prompt_choices(settings, TASK1)) == 3
    assert {p: p.read_bytes() for p in DEFAULT_PROMPT_DIR.glob("*.txt")} == defaults
    with pytest.raises(PromptError, match="placeholder"):
        save_prompt_copy(settings, TASK1, system="x", user_template="no placeholder")


def test_parent_choices_show_share(service: JobService) -> None:
    assert parent_choices(service) == []
    job = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv"))))
    service.wait([job.id], poll_interval=0.05, timeout=60)
    [uncollected] = parent_choices(service)
    assert uncollected.ones is None and "after collecting" in uncollected.summary
    service.collect(job.id)
    [choice] = parent_choices(service)
    assert choice.rows == job.n_rows and 0 < choice.ones < choice.rows
    assert f"{choice.rows:,} rows" in choice.summary and "%" in choice.summary
    # The picker keeps the label it first drew for a selected option, so the label must not
    # change when the counts do: the counts live in the summary beside it.
    assert choice.label == uncollected.label and job.id in choice.label
    assert "scored" not in choice.label and f"{job.n_rows} rows" in choice.label  # the job's rows, fixed
    assert "investor_reports_2024_part1.csv" in choice.label  # as every job picker shows it (job_label)


def test_waiting_message_says_why_nothing_is_estimated() -> None:
    bad = check_inputs([("a.csv", b"title,body\nx,y\n"), ("b.csv", b"%PDF-1.7 binary")])
    kind, text = waiting_message(bad)
    assert kind == "warning" and text.startswith("None of the chosen files can be used")
    assert "Choose the inputs" not in text
    kind, text = waiting_message(bad[:1])
    assert kind == "warning" and text.startswith("The chosen file cannot be used")
    assert waiting_message([])[0] == "info" and "Choose the inputs above" in waiting_message([])[1]
    good = check_inputs([("c.csv", b"pdf_file_name,paragraph_text\nFfBF_X_R.pdf,hello\n")])
    assert waiting_message(good + bad, prompts_ok=False) == waiting_message(good, prompts_ok=False)
    assert "prompt files" in waiting_message(good, prompts_ok=False)[1]


def test_fingerprint_is_stable_and_sensitive(tmp_path: Path) -> None:
    a = dict(task=TASK1, sources=[("a.csv", b"x")], parent=None, model="m", max_tokens=10, provider="local", prompts=None)
    assert fingerprint(**a) == fingerprint(**a)
    assert fingerprint(**a) != fingerprint(**{**a, "sources": [("a.csv", b"y")]})
    assert fingerprint(**a) != fingerprint(**{**a, "max_tokens": 11})
    f = tmp_path / "f.csv"
    f.write_text("x")
    assert fingerprint(**{**a, "sources": [f]}) == fingerprint(**{**a, "sources": [f]})


def test_submit_once() -> None:
    from types import SimpleNamespace

    from core.errors import ProviderError, SubmissionIncomplete
    from core.submission import submit_once

    store: dict[str, str] = {}
    calls: list[str] = []

    def submit():
        calls.append("x")
        # a second click arriving while the first is still sending
        assert submit_once(store, "fp", submit) == ""
        return SimpleNamespace(id="job_1")

    assert submit_once(store, "fp", submit) == "job_1"
    assert submit_once(store, "fp", submit) == "job_1" and calls == ["x"]

    def failing():
        raise ProviderError("no key")

    with pytest.raises(ProviderError):
        submit_once(store, "fp2", failing)
    assert "fp2" not in store  # nothing recorded: may retry
    def half_sent():
        raise SubmissionIncomplete("job_2", "Job job_2 is recorded, but batch b001 could not be submitted")

    with pytest.raises(SubmissionIncomplete):
        submit_once(store, "fp3", half_sent)
    assert store["fp3"] == "job_2"  # recorded: never submitted again
    assert submit_once(store, "fp3", failing) == "job_2"


def test_choices_make_a_file_usable_and_another_job() -> None:
    """A file without a paragraph_text column needs a choice (and says so); the choice, by file
    name, makes it usable; the same file read another way is another job."""
    coded = ("coded.csv", b"id,Text\n1,We invested EUR 5m in wetlands.\n")
    (check,) = check_inputs([coded])
    assert check.needs_choice and not check.ok
    (bad,) = check_inputs([("c.csv", b"%PDF-1.7 binary")])
    assert not bad.needs_choice  # nothing to choose in a PDF
    chosen = with_choices([coded], {"coded.csv": FileChoice(text_column="Text")})
    assert source_name(chosen[0]) == "coded.csv"
    (check,) = check_inputs(chosen)
    assert check.ok and check.table.report.text_column == "Text"
    assert "column 'Text'" in report_table([check]).loc[0, "notes"]
    assert with_choices([coded], {"coded.csv": FileChoice()}) == [coded]  # nothing chosen: as it was
    common = dict(task=TASK1, parent=None, model="m", max_tokens=10, provider="local", prompts=None)
    assert fingerprint(sources=[coded], **common) != fingerprint(sources=chosen, **common)
    assert fingerprint(sources=chosen, **common) == fingerprint(
        sources=with_choices([coded], {"coded.csv": FileChoice(text_column="Text")}), **common)


def test_layout_for_the_pickers() -> None:
    assert layout_of(("a.csv", b"id;Text\n1;x\n")).columns == ("id", "Text")
    assert layout_of(("a.csv", b"%PDF-1.7")) is None
    key = choice_key("sheet", "a name with spaces and \u00e9.xlsx")
    assert key.startswith("submit_sheet_") and key == choice_key("sheet", "a name with spaces and \u00e9.xlsx")
    assert key != choice_key("text_column", "a name with spaces and \u00e9.xlsx")


def test_markdown_literal_keeps_upload_names_plain() -> None:
    from core.submission import markdown_literal

    hostile = "![x](http://example.invalid/p.png) **b** $x$ :material/eco: [l](javascript:1).xlsx"
    escaped = markdown_literal(hostile)
    assert "![" not in escaped and "](" not in escaped and "**" not in escaped and "\\:material/eco\\:" in escaped
    assert escaped.replace("\\", "") == hostile  # only escapes were added
