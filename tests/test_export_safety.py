"""Formula injection (issue 9, item 1): text that a spreadsheet would run as a formula never
reaches a person's spreadsheet live, and our own readers still get the exact text back.

End to end: hostile paragraphs, report names and model explanations go through real jobs (the
openai SDK over loopback to the in-process local backend, which forwards to a scripted chat
server), then the raw bytes of the result CSVs and the Explore downloads are checked.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import openpyxl
import pandas as pd
import pytest

import fakes
from conftest import finish, make_backend, service_for
from core.explore import load_results, to_csv_bytes, to_xlsx_bytes
from core.jobs import JobService
from core.models import Job
from core.results import read_results
from core.settings import Settings
from fakes import FakeChatServer

TASK1 = "investment_activity_classification"
TASK2 = "assetization_features_scoring"

# Written out here rather than imported, so the tests state the rule independently of the code:
# OWASP's triggers, NUL (ASVS), the full-width forms, and the apostrophe (for reversibility).
TRIGGERS = set("=+-@\t\r\x00\uff1d\uff0b\uff0d\uff20")
ESCAPED = TRIGGERS | {"'"}

# Paragraphs and report names must survive input cleaning (which strips leading whitespace),
# so tab / CR first characters are tested through the model's explanations.
PARAGRAPHS = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "'=already", "'plain", "\uff1d1",
              "The fund invested EUR 5m in peatland restoration."]
REPORTS = ['=HYPERLINK("http://x","y").pdf', "+report.pdf", "-report.pdf", "@report.pdf", "'=report.pdf",
           "'report.pdf", "\uff20report.pdf", "FfBF_Nordic_Report_2024.pdf"]
EXPLANATIONS = ["\t=1", "\r=1", '=HYPERLINK("http://x","y")', "@SUM(A1)", "'=already", "'plain", "\uff0b1",
                "A concrete allocation to restoration."]
EXPLANATION_FOR = dict(zip(PARAGRAPHS, EXPLANATIONS))
HOSTILE_MODEL = "-fake-chat-model"


def escaped(text: str) -> str:
    """What a person's file must hold for ``text``."""
    return "'" + text if text[:1] in ESCAPED else text


ORIGINAL_ANSWER = fakes.answer_for  # the scripted server's own answers, before the fixture patches them


def hostile_answer(text: str, schema_name: str) -> tuple[int, dict[str, Any]]:
    """A valid answer (score 1, so task 2 gets every row) whose explanation and model name are
    hostile; the explanation is chosen by the paragraph found in the user message."""
    status, body = ORIGINAL_ANSWER(text, schema_name)
    message = body["choices"][0]["message"]
    answer = json.loads(message["content"])
    found = [p for p in PARAGRAPHS if f'"""\n{p}\n"""' in text]
    answer["Explanation"] = EXPLANATION_FOR[found[0]] if found else "paragraph not found in the prompt"
    if "Score" in answer:
        answer["Score"] = 1
    message["content"] = json.dumps(answer)
    body["model"] = HOSTILE_MODEL
    return status, body


@pytest.fixture
def hostile_jobs(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[JobService, Job, Job]]:
    """A collected task-1 job over the hostile rows and the collected task-2 job chained to it."""
    monkeypatch.setattr(fakes, "answer_for", hostile_answer)  # the scripted server looks it up per request
    source = tmp_path / "hostile.csv"
    pd.DataFrame({"paragraph_text": PARAGRAPHS, "pdf_file_name": REPORTS}).to_csv(source, index=False)
    with FakeChatServer() as chat, make_backend(tmp_path, chat_base_url=chat.base_url, concurrency=4) as backend:
        service = service_for(backend, settings)
        job1 = service.submit(service.prepare(TASK1, inputs=[source], model="fake-chat-model"))
        finish(service, job1.id)
        service.collect(job1.id)
        job2 = service.submit(service.prepare(TASK2, parent=job1.id, model="fake-chat-model"))
        finish(service, job2.id)
        service.collect(job2.id)
        yield service, service.get(job1.id), service.get(job2.id)


def csv_cells(text: str) -> list[dict[str, str]]:
    """The rows of a CSV text as dicts of the cells exactly as a spreadsheet receives them."""
    return list(csv.DictReader(io.StringIO(text, newline="")))


def assert_no_live_cell(rows: list[dict[str, str]], where: str) -> None:
    live = [(i, column, cell) for i, row in enumerate(rows) for column, cell in row.items() if cell[:1] in TRIGGERS]
    assert not live, f"{where}: cells a spreadsheet would run as formulas: {live}"


def assert_hostile_cells_escaped(rows: list[dict[str, str]], where: str) -> None:
    by_paragraph = {escaped(p): p for p in PARAGRAPHS}
    assert sorted(r["paragraph_text"] for r in rows) == sorted(by_paragraph), where
    for row in rows:
        paragraph = by_paragraph[row["paragraph_text"]]
        i = PARAGRAPHS.index(paragraph)
        assert row["pdf_file_name"] == escaped(REPORTS[i]), where
        assert row["explanation"] == escaped(EXPLANATIONS[i]), where


def test_result_csvs_are_neutralised_and_read_back_exactly(hostile_jobs: tuple[JobService, Job, Job]) -> None:
    service, job1, job2 = hostile_jobs
    assert job1.status == job2.status == "completed"
    for job in (job1, job2):
        paths = [Path(p) for p in job.output_files]
        for path in paths:
            rows = csv_cells(path.read_bytes().decode("utf-8"))
            assert_no_live_cell(rows, path.name)
            assert_hostile_cells_escaped(rows, path.name)
            assert {r["model"] for r in rows} == {"'" + HOSTILE_MODEL}
        # our own reader gets the exact text back, apostrophes a paragraph really starts with included
        back = read_results(paths)
        assert sorted(back["paragraph_text"]) == sorted(PARAGRAPHS)
        for _, row in back.iterrows():
            i = PARAGRAPHS.index(row["paragraph_text"])
            expected = (REPORTS[i], EXPLANATIONS[i], HOSTILE_MODEL)
            assert (row["pdf_file_name"], row["explanation"], row["model"]) == expected
    # the job's rows.csv is a program file read only by JobService.rows: kept verbatim
    rows_file = pd.read_csv(Path(job1.job_dir) / "rows.csv", dtype=str, keep_default_na=False)
    assert sorted(rows_file["paragraph_text"]) == sorted(PARAGRAPHS)


def test_explore_csv_download_is_neutralised(hostile_jobs: tuple[JobService, Job, Job]) -> None:
    _, job1, job2 = hostile_jobs
    frame = load_results([job1, job2])
    assert sorted(frame["paragraph_text"]) == sorted(PARAGRAPHS * 2)  # loading restores the exact text

    rows = csv_cells(to_csv_bytes(frame).decode("utf-8-sig"))
    assert_no_live_cell(rows, "Explore CSV")
    assert_hostile_cells_escaped([r for r in rows if r["task"] == TASK1], "Explore CSV, task 1")
    assert_hostile_cells_escaped([r for r in rows if r["task"] == TASK2], "Explore CSV, task 2")


def test_explore_excel_download_holds_text_cells_only(hostile_jobs: tuple[JobService, Job, Job]) -> None:
    _, job1, job2 = hostile_jobs
    frame = load_results([job1, job2])
    data = to_xlsx_bytes(frame)
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        sheets = [book.read(n) for n in book.namelist() if n.startswith("xl/worksheets/") and n.endswith(".xml")]
    assert sheets and not any(b"<f>" in xml or b"<f " in xml for xml in sheets)  # no formula element at all
    sheet = openpyxl.load_workbook(io.BytesIO(data))["results"]
    header = [c.value for c in sheet[1]]
    for column in ("paragraph_text", "pdf_file_name", "explanation", "model"):
        cells = [row[header.index(column)] for row in sheet.iter_rows(min_row=2)]
        assert all(c.data_type == "s" for c in cells), column
        # Excel needs no apostrophe: the string cells hold the exact text (tab and CR included)
        assert [c.value for c in cells] == frame[column].tolist(), column


def test_rule_touches_only_text_that_needs_it_and_is_reversible() -> None:
    from core.csvout import csv_bytes
    from core.exportsafe import neutralise_frame, restore_frame

    hostile = [*PARAGRAPHS, *EXPLANATIONS, "\x00=1", "''", "'", "=", "", "a=b", " =1", "5", "-"]
    frame = pd.DataFrame({
        "text": hostile,
        "number": np.arange(len(hostile)) - 5,  # negative numbers are numbers, not formulas
        "mixed": np.array([3, None, *hostile[2:]], dtype=object),
        "category": pd.Categorical(hostile),
    }, index=[7] * len(hostile))  # a duplicate index must not misalign anything
    before = frame.copy()

    out = neutralise_frame(frame)
    assert out["text"].tolist() == [escaped(t) for t in hostile]
    assert out["category"].astype(str).tolist() == [escaped(t) for t in hostile]
    assert out["mixed"].tolist()[:2] == [3, None] and out["mixed"].tolist()[2:] == [escaped(t) for t in hostile[2:]]
    assert out["number"].equals(frame["number"])
    pd.testing.assert_frame_equal(frame, before)  # the caller's frame is untouched
    numbers = frame[["number"]]
    assert neutralise_frame(numbers) is numbers  # nothing to change: no copy

    back = restore_frame(out.astype({"category": object}))
    assert back["text"].tolist() == hostile and back["category"].tolist() == hostile
    assert back["mixed"].tolist()[2:] == hostile[2:]

    # the download path neutralises whichever writer it takes (Arrow, or pandas for mixed columns)
    for part in (frame[["text"]], frame[["mixed"]]):
        assert_no_live_cell(csv_cells(csv_bytes(part).decode("utf-8")), f"csv_bytes {part.columns[0]}")


def test_arrow_fast_path_matches_the_rule_cell_for_cell() -> None:
    """The string-dtype path reads UTF-8 bytes at Arrow offsets: check it against the rule
    written in plain Python on random cells, with nulls, sliced and multi-chunk columns."""
    import random

    import pyarrow as pa

    from core.exportsafe import neutralise_frame, restore_frame

    def rule(text: str) -> str:
        return "'" + text if text[:1] in ESCAPED else text

    rng = random.Random(9)
    # ＞ and Ａ share their first UTF-8 bytes with ＝ and ＠ but are not triggers
    alphabet = [*sorted(ESCAPED), "a", "\u00e9", "\u20ac", "\U0001f600", " ", "\n", "\uff1e", "\uff21"]
    dtype = pd.StringDtype("pyarrow", na_value=np.nan)  # what read_csv(dtype=str) gives

    def cells(n: int) -> list[str | None]:
        return [None if rng.random() < 0.1 else "".join(rng.choices(alphabet, k=rng.randint(0, 4))) for _ in range(n)]

    sliced = 0
    for _ in range(200):
        chunks = [pa.array(cells(rng.randint(0, 12)), type=pa.large_string()) for _ in range(rng.randint(1, 4))]
        chunks = [c.slice(1) if len(c) > 1 and rng.random() < 0.3 else c for c in chunks]  # non-zero offsets
        column = pd.Series(dtype.__from_arrow__(pa.chunked_array(chunks, type=pa.large_string())))
        arrow = pa.array(column)  # one chunk comes back as an Array, several as a ChunkedArray
        sliced += any(c.offset for c in (arrow.chunks if isinstance(arrow, pa.ChunkedArray) else [arrow]))
        original = [v if isinstance(v, str) else None for v in column]
        out = neutralise_frame(pd.DataFrame({"t": column}))["t"]
        assert out.dtype == column.dtype
        assert [v if isinstance(v, str) else None for v in out] == [None if v is None else rule(v) for v in original]
        pa.array(out).validate(full=True)
        back = restore_frame(pd.DataFrame({"t": out}))["t"]
        assert [v if isinstance(v, str) else None for v in back] == original
    assert sliced  # the offsets case was really exercised

    # Arrow allows a null to span bytes: it stays null, and its bytes are not a cell to change
    offsets = pa.py_buffer(np.array([0, 2, 4], dtype=np.int64).tobytes())
    validity = pa.array([False, True]).buffers()[1]
    hidden = pa.LargeStringArray.from_buffers(2, offsets, pa.py_buffer(b"=x=y"), validity, 1)
    out = neutralise_frame(pd.DataFrame({"t": pd.Series(dtype.__from_arrow__(hidden))}))["t"]
    assert out.isna().tolist() == [True, False] and out.iloc[1] == "'=y"
