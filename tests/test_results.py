"""Result files: per-line classification, merging by custom_id, and the CSVs written."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest

from core.csvout import write_csv
from core.results import (
    ROW_STATUSES,
    MalformedResultFile,
    ResultTable,
    RowResult,
    classify_line,
    merge_results,
    read_results,
    result_columns,
    status_counts,
    write_results,
)
from core.tasks import ASSETIZATION_FEATURES, INVESTMENT_ACTIVITY


def answer_line(custom_id: str, content: object, *, finish: str = "stop", refusal: str | None = None,
                usage: object = None, status_code: int = 200, model: object = "gpt-4.1-mini") -> dict:
    usage = {"prompt_tokens": 600, "completion_tokens": 40} if usage is None else usage
    body = {"model": model, "usage": usage,
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": content, "refusal": refusal}}]}
    return {"id": "batch_req_1", "custom_id": custom_id,
            "response": {"status_code": status_code, "request_id": "req_1", "body": body}, "error": None}


def error_line(custom_id: str, code: str, message: str) -> dict:
    return {"id": "batch_req_2", "custom_id": custom_id, "response": None, "error": {"code": code, "message": message}}


def good(score: int = 1, explanation: str = "Allocates EUR 20 million to wetland restoration.") -> str:
    return orjson.dumps({"Score": score, "Explanation": explanation}).decode()


# Every shape a line can take, the common success included: the table (with its fast path)
# must say exactly what classify_line, the reference, says about each.
LINES = [
    answer_line("s0-r2", good()),
    answer_line("s0-r3", good(0, 'Says "we support TNFD", nothing more, no action.')),
    answer_line("s0-r4", None, refusal="I can't help with that."),
    answer_line("s0-r5", good()[:20], finish="length"),
    answer_line("s0-r6", good(), finish="content_filter"),
    answer_line("s0-r7", "not json at all"),
    answer_line("s0-r8", '{"Score": 2, "Explanation": "two"}'),
    answer_line("s0-r9", '{"Score": 1, "Explanation": "x", "Extra": 1}'),
    answer_line("s0-r10", '{"Score": 1, "Explanation": ""}'),
    answer_line("s0-r11", '{"Score": true, "Explanation": "bool is not an int here"}'),
    answer_line("s0-r12", ""),
    answer_line("s0-r13", good(), usage={"prompt_tokens": "600", "completion_tokens": 40}),
    answer_line("s0-r14", good(), usage={}),
    answer_line("s0-r15", good(), model=None),
    answer_line("s0-r16", good(), status_code=500),
    {"id": "x", "custom_id": "s0-r17", "response": {"status_code": 200, "body": {"choices": []}}, "error": None},
    {"id": "x", "custom_id": "s0-r18", "response": {"status_code": 200, "body": {"choices": "oops"}}, "error": None},
    error_line("s0-r19", "batch_expired", "This request could not be executed before the completion window expired."),
    error_line("s0-r20", "batch_cancelled", "Cancelled."),
    error_line("s0-r21", "server_error", "boom"),
    {"id": "x", "custom_id": 22, "response": None, "error": {"code": "server_error", "message": "odd id"}},
]


def as_file(lines: list[dict]) -> bytes:
    return b"\n".join(orjson.dumps(line) for line in lines) + b"\n"


def test_each_line_gets_what_the_reference_classifier_says() -> None:
    table = ResultTable(INVESTMENT_ACTIVITY)
    table.parse(as_file(LINES), batch_id="batch_abc", file_label="output.jsonl")
    assert len(table) == len(LINES)
    for position, line in enumerate(LINES):
        assert table[position] == classify_line(line, task=INVESTMENT_ACTIVITY, batch_id="batch_abc"), line
    statuses = [table[p].status for p in range(len(LINES))]
    assert statuses[:3] == ["succeeded", "succeeded", "refused"]
    assert {"truncated", "invalid_json", "schema_violation", "failed", "expired", "cancelled"} <= set(statuses)
    assert table[0].answer == {"Score": 1, "Explanation": "Allocates EUR 20 million to wetland restoration."}
    assert table[0].prompt_tokens == 600 and table[0].model == "gpt-4.1-mini"


def test_task2_answers_are_checked_field_by_field() -> None:
    answer = {"Explanation": "Owns the land rights.", "IntrinsicValueScore": 0, "CashFlowScore": 1,
              "OwnershipControlScore": 1}
    lines = [answer_line("s0-r2", orjson.dumps(answer).decode()),
             answer_line("s0-r3", orjson.dumps({**answer, "CashFlowScore": 3}).decode()),
             answer_line("s0-r4", orjson.dumps({k: v for k, v in answer.items() if k != "Explanation"}).decode())]
    table = ResultTable(ASSETIZATION_FEATURES)
    table.parse(as_file(lines), batch_id="b", file_label="out.jsonl")
    assert [table[p].status for p in range(3)] == ["succeeded", "schema_violation", "schema_violation"]
    assert table[0].answer == answer
    assert "CashFlowScore" in table[1].reason


@pytest.mark.parametrize("data, problem", [
    (b'{"custom_id": "s0-r2", "response": null, "error": null}\n{not json\n', "line 2: not valid JSON"),
    (b'\n\n[1, 2]\n', "line 3: no custom_id"),
    (b'{"id": "x"}\n', "line 1: no custom_id"),
])
def test_a_damaged_file_names_the_file_and_line(data: bytes, problem: str) -> None:
    with pytest.raises(MalformedResultFile, match=f"batch_x_output.jsonl, {problem}"):
        ResultTable(INVESTMENT_ACTIVITY).parse(data, batch_id="batch_x", file_label="batch_x_output.jsonl")


def rows_frame(n: int) -> pd.DataFrame:
    return pd.DataFrame({
        "custom_id": [f"s0-r{i + 2}" for i in range(n)],
        "source_index": 0,
        "csv_file_name": "FfBF_Allianz_paragraphs.csv",
        "row": [i + 2 for i in range(n)],
        "pdf_file_name": "FfBF_Allianz_Report_2025.pdf",
        "paragraph_text": [f"Paragraph {i}, with a comma." for i in range(n)],
    })


def test_answers_attach_by_custom_id_whatever_the_line_order() -> None:
    rows = rows_frame(300)
    lines = [answer_line(cid, good(i % 2, f"answer for {cid}")) for i, cid in enumerate(rows["custom_id"])]
    del lines[17]  # one row never answered
    random.Random(3).shuffle(lines)
    table = ResultTable(INVESTMENT_ACTIVITY)
    table.parse(as_file(lines), batch_id="b", file_label="out.jsonl")
    frame = merge_results(rows, table)
    assert len(frame) == 300
    answered = frame[frame["status"] == "succeeded"]
    assert (answered["explanation"] == "answer for " + answered["custom_id"]).all()
    assert answered["score"].tolist() == [int(cid.split("r")[1]) % 2 == 1 for cid in answered["custom_id"]]
    lost = frame.iloc[17]
    assert lost["status"] == "missing" and "no answer" in lost["status_reason"]
    assert pd.isna(lost["score"]) and lost["explanation"] == "" and lost["prompt_tokens"] == 0
    counts = status_counts(frame)
    assert list(counts) == list(ROW_STATUSES) and sum(counts.values()) == 300
    assert counts == {**dict.fromkeys(ROW_STATUSES, 0), "succeeded": 299, "missing": 1}


def test_a_later_success_wins_over_an_earlier_failure_for_the_same_row() -> None:
    rows = rows_frame(2)
    table = ResultTable(INVESTMENT_ACTIVITY)
    table.parse(as_file([error_line("s0-r2", "server_error", "first try failed"),
                         error_line("s0-r3", "server_error", "first report"),
                         error_line("s0-r3", "batch_expired", "second report")]), batch_id="b", file_label="e")
    table.add(RowResult("s0-r2", "succeeded", "", {"Score": 1, "Explanation": "ok"}, "m", "b", 5, 6))
    frame = merge_results(rows, table)
    assert frame["status"].tolist() == ["succeeded", "failed"]
    assert frame["status_reason"].iloc[1] == "server_error: first report"
    positions = table.best_positions()
    assert table.usage(positions.values()) == (5, 6)  # the error lines carry no usage


def test_result_files_read_back_cell_for_cell(tmp_path: Path) -> None:
    """Commas, quotes, line breaks and a lone carriage return (which Python's csv module
    leaves unquoted, splitting the row for every reader) all survive a write and a read."""
    texts = ["plain", "with, comma", 'with "quotes"', "two\nlines", "old mac\rline end", "crlf\r\nend",
             " padded ", "", "Ä€ “typographic” — 42%"]
    rows = rows_frame(len(texts)).assign(paragraph_text=texts)
    lines = [answer_line(cid, good(1, f"why {text}")) for cid, text in zip(rows["custom_id"], texts)]
    table = ResultTable(INVESTMENT_ACTIVITY)
    table.parse(as_file(lines[:-1]), batch_id="b", file_label="out.jsonl")
    frame = merge_results(rows, table).assign(answered_by="job_1")
    (path,) = write_results(frame, task=INVESTMENT_ACTIVITY, output_dir=tmp_path)
    back = read_results([path])
    assert list(back.columns) == result_columns(INVESTMENT_ACTIVITY)
    assert back["paragraph_text"].tolist() == texts
    assert back["explanation"].tolist() == [f"why {t}" for t in texts[:-1]] + [""]
    assert back["score"].tolist() == ["1"] * (len(texts) - 1) + [""]
    assert back["status"].tolist()[-1] == "missing"


def test_one_csv_per_source_and_same_named_uploads_stay_apart(tmp_path: Path) -> None:
    rows = pd.concat([rows_frame(3).assign(source_index=s, csv_file_name=name, custom_id=lambda f, s=s: [
        f"s{s}-r{r}" for r in f["row"]]) for s, name in enumerate(["a.csv", "b.xlsx", "a.csv"])], ignore_index=True)
    frame = merge_results(rows, ResultTable(INVESTMENT_ACTIVITY)).assign(answered_by="job_1")
    paths = write_results(frame, task=INVESTMENT_ACTIVITY, output_dir=tmp_path)
    assert [p.name for p in paths] == ["a.csv", "b.csv", "a_s2.csv"]
    for source_index, path in enumerate(paths):
        assert read_results([path])["custom_id"].tolist() == [f"s{source_index}-r{r}" for r in (2, 3, 4)]


def test_columns_arrow_cannot_convert_are_still_written_readably(tmp_path: Path) -> None:
    frame = pd.DataFrame({
        "mixed": np.array([1, "two", None, 2.5, "line\rbreak"], dtype=object),
        "text": ["a", "b,c", 'd"e', "f\ng", "h"],
        "category": pd.Categorical(["x", "y", "x", "y", "x"]),
    })
    write_csv(frame, tmp_path / "odd.csv")
    back = pd.read_csv(tmp_path / "odd.csv", dtype=str, keep_default_na=False)
    assert back["mixed"].tolist() == ["1", "two", "", "2.5", "line\rbreak"]
    assert back["text"].tolist() == ["a", "b,c", 'd"e', "f\ng", "h"]
    assert back["category"].tolist() == ["x", "y", "x", "y", "x"]
    assert not list(tmp_path.glob("*.tmp"))
