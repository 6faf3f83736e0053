"""Tests for core.inputs: real files written byte by byte into tmp_path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

import openpyxl
import pandas as pd
import pytest

from core.errors import InputError
from core.inputs import (
    ChoiceNeeded,
    DroppedRow,
    InputReport,
    InputSource,
    TableLayout,
    table_layout,
    find_input_files,
    read_input,
    read_inputs,
)

SAMPLES = REPO / "data" / "processed" / "biodiversity_related_paragraphs"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def records(table) -> list[dict]:
    return table.frame.to_dict("records")


# ---------------------------------------------------------------------------- encodings


def test_utf8_comma(tmp_path: Path) -> None:
    data = "pdf_file_name,paragraph_text\na.pdf,Wir investieren in Moore – 5 Mio. €\nb.pdf,Second\n"
    table = read_input(write(tmp_path, "a.csv", data.encode("utf-8")))
    assert table.file_name == "a.csv"
    assert list(table.frame.columns) == ["row", "paragraph_text", "pdf_file_name"]
    assert records(table) == [
        {"row": 2, "paragraph_text": "Wir investieren in Moore – 5 Mio. €", "pdf_file_name": "a.pdf"},
        {"row": 3, "paragraph_text": "Second", "pdf_file_name": "b.pdf"},
    ]
    rep = table.report
    assert (rep.encoding, rep.separator, rep.rows_read, rep.rows_kept) == ("utf-8", ",", 2, 2)
    assert rep.dropped == [] and rep.warnings == []


def test_frame_dtypes(tmp_path: Path) -> None:
    table = read_input(write(tmp_path, "a.csv", b"paragraph_text,pdf_file_name\nx,y\n"))
    assert table.frame["row"].dtype == "int64"
    assert pd.api.types.is_string_dtype(table.frame["paragraph_text"])
    assert pd.api.types.is_string_dtype(table.frame["pdf_file_name"])


def test_utf8_bom_header_matches(tmp_path: Path) -> None:
    data = "\ufeffparagraph_text;pdf_file_name\nÉcosystèmes;r.pdf\n".encode("utf-8")
    table = read_input(write(tmp_path, "bom.csv", data))
    assert table.report.encoding == "utf-8-sig"
    assert table.report.separator == ";"
    assert records(table) == [{"row": 2, "paragraph_text": "Écosystèmes", "pdf_file_name": "r.pdf"}]
    assert table.report.warnings == []


def test_cp1252_excel_export(tmp_path: Path) -> None:
    text = "pdf_file_name;paragraph_text\r\nFfBF_A_R.pdf;We invested 5 m€ in the investor’s café fund\r\n"
    data = text.encode("cp1252")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    table = read_input(write(tmp_path, "excel.csv", data))
    assert table.report.encoding == "cp1252"
    assert table.report.separator == ";"
    assert table.frame["paragraph_text"].tolist() == ["We invested 5 m€ in the investor’s café fund"]
    # a valid cp1252 file is a note (what was done), not a problem
    assert any("cp1252" in n for n in table.report.notes) and table.report.warnings == []


def test_utf8_bom_before_cp1252_text(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + "paragraph_text;pdf_file_name\nNiveau élevé;a.pdf\n".encode("cp1252")
    table = read_input(write(tmp_path, "mixed.csv", data))
    assert table.report.encoding == "cp1252"
    assert records(table) == [{"row": 2, "paragraph_text": "Niveau élevé", "pdf_file_name": "a.pdf"}]


def test_latin1_fallback_when_cp1252_fails(tmp_path: Path) -> None:
    # 0x81 is undefined in cp1252 but valid in latin-1, where it is the C1 control U+0081:
    # control characters are removed from the text, and the report says so.
    data = b"paragraph_text\nabc\x81 caf\xe9\n"
    table = read_input(write(tmp_path, "odd.csv", data))
    assert table.report.encoding == "latin-1"
    assert table.frame["paragraph_text"].tolist() == ["abc café"]
    assert any("latin-1" in w for w in table.report.warnings)
    assert any("control characters" in w and "1 paragraph_text" in w for w in table.report.warnings)


def test_utf16_unicode_text_export(tmp_path: Path) -> None:
    data = "paragraph_text\tpdf_file_name\r\nÅ text\tx.pdf\r\n".encode("utf-16")
    table = read_input(write(tmp_path, "unicode.csv", data))
    assert table.report.encoding == "utf-16"
    assert table.report.separator == "\t"
    assert records(table) == [{"row": 2, "paragraph_text": "Å text", "pdf_file_name": "x.pdf"}]


# ---------------------------------------------------------------------------- separators, quoting


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_each_separator(tmp_path: Path, sep: str) -> None:
    # The text contains the two other separators unquoted where that is legal.
    others = "".join(s for s in (",", ";") if s != sep)
    data = f"pdf_file_name{sep}paragraph_text{sep}page\nr.pdf{sep}Text {others} here{sep}3\n"
    table = read_input(write(tmp_path, "s.csv", data.encode()))
    assert table.report.separator == sep
    assert records(table) == [{"row": 2, "paragraph_text": f"Text {others} here", "pdf_file_name": "r.pdf", "page": "3"}]


def test_separator_inside_quoted_header_is_ignored(tmp_path: Path) -> None:
    data = b'"paragraph_text";"pdf_file_name";"notes, free text"\n"a, b, c";x.pdf;n\n'
    table = read_input(write(tmp_path, "q.csv", data))
    assert table.report.separator == ";"
    assert records(table) == [{"row": 2, "paragraph_text": "a, b, c", "pdf_file_name": "x.pdf", "notes, free text": "n"}]


def test_quoted_newlines_separators_and_quotes_round_trip(tmp_path: Path) -> None:
    para1 = 'First line, with comma\nsecond line; with "quotes" inside'
    para2 = "Windows break\r\nkept"
    esc = lambda s: '"' + s.replace('"', '""') + '"'  # noqa: E731
    data = f"pdf_file_name,paragraph_text\r\nr1.pdf,{esc(para1)}\r\nr2.pdf,{esc(para2)}\r\nr3.pdf,plain\r\n"
    table = read_input(write(tmp_path, "nl.csv", data.encode()))
    assert table.frame["paragraph_text"].tolist() == [para1, para2, "plain"]
    # A multi-line cell is still one spreadsheet row.
    assert table.frame["row"].tolist() == [2, 3, 4]


def test_single_column_keeps_commas(tmp_path: Path) -> None:
    data = b"paragraph_text\nOne, two, three\nFour; five\n"
    table = read_input(write(tmp_path, "one.csv", data))
    assert table.report.separator is None
    assert table.frame["paragraph_text"].tolist() == ["One, two, three", "Four; five"]
    assert table.frame["pdf_file_name"].tolist() == ["", ""]
    assert any("pdf_file_name" in w for w in table.report.warnings)


def test_excel_sep_hint_line(tmp_path: Path) -> None:
    data = b"sep=;\r\nparagraph_text;pdf_file_name\r\nx, y;a.pdf\r\n"
    table = read_input(write(tmp_path, "hint.csv", data))
    assert table.report.separator == ";"
    assert records(table) == [{"row": 2, "paragraph_text": "x, y", "pdf_file_name": "a.pdf"}]


# ---------------------------------------------------------------------------- columns, values


def test_header_case_and_whitespace(tmp_path: Path) -> None:
    data = b" PDF_File_Name , Paragraph_TEXT \t\nr.pdf,Text\n"
    table = read_input(write(tmp_path, "h.csv", data))
    assert records(table) == [{"row": 2, "paragraph_text": "Text", "pdf_file_name": "r.pdf"}]


def test_duplicate_columns_warn_and_first_paragraph_text_used(tmp_path: Path) -> None:
    data = b"paragraph_text,page,page,Paragraph_Text,pdf_file_name\nfirst,1,2,second,r.pdf\n"
    table = read_input(write(tmp_path, "dup.csv", data))
    assert table.frame["paragraph_text"].tolist() == ["first"]
    warnings = " | ".join(table.report.warnings)
    assert "duplicate column names" in warnings
    assert "'page' (2 times)" in warnings
    assert "'paragraph_text' (2 times)" in warnings
    assert "'paragraph_text' appears 2 times; the first one (column 1) was used" in warnings


def test_cells_kept_as_written(tmp_path: Path) -> None:
    data = b"paragraph_text,pdf_file_name\nNA,0012.pdf\nnull,N/A\n  padded text  ,\n"
    table = read_input(write(tmp_path, "na.csv", data))
    assert table.frame["paragraph_text"].tolist() == ["NA", "null", "padded text"]
    assert table.frame["pdf_file_name"].tolist() == ["0012.pdf", "N/A", ""]
    assert "1 kept rows have an empty pdf_file_name" in table.report.warnings


def test_short_rows_are_filled(tmp_path: Path) -> None:
    data = b"paragraph_text,pdf_file_name,page\nonly text\n"
    table = read_input(write(tmp_path, "short.csv", data))
    assert records(table) == [{"row": 2, "paragraph_text": "only text", "pdf_file_name": "", "page": ""}]


# ---------------------------------------------------------------------------- dropped rows


def test_empty_paragraphs_dropped_with_row_numbers(tmp_path: Path) -> None:
    data = (
        b"pdf_file_name;paragraph_text\n"
        b'a.pdf;"multi\nline"\n'  # row 2
        b"b.pdf;\n"  # row 3: empty
        b"c.pdf;kept\n"  # row 4
        b"d.pdf;   \t \n"  # row 5: whitespace only
        b"\n"  # row 6: blank line
        b'e.pdf;" "\n'  # row 7: quoted space
        b"f.pdf;last\n"  # row 8
    )
    table = read_input(write(tmp_path, "reports_a.csv", data))
    assert table.frame["row"].tolist() == [2, 4, 8]
    assert table.frame["paragraph_text"].tolist() == ["multi\nline", "kept", "last"]
    rep = table.report
    assert rep.rows_read == 7 and rep.rows_kept == 3
    assert rep.dropped == [
        DroppedRow(3, "empty paragraph_text"),
        DroppedRow(5, "empty paragraph_text"),
        DroppedRow(6, "empty row"),
        DroppedRow(7, "empty paragraph_text"),
    ]
    assert rep.summary() == (
        "reports_a.csv: 7 rows read, 3 kept, 4 dropped (empty paragraph_text: rows 3, 5, 7; "
        "empty row: row 6); encoding utf-8, separator ';'"
    )


def test_summary_format_with_warnings() -> None:
    rep = InputReport(
        file_name="reports_a.csv",
        rows_read=38,
        rows_kept=36,
        dropped=[DroppedRow(5, "empty paragraph_text"), DroppedRow(17, "empty paragraph_text")],
        warnings=["the file is not UTF-8"],
        encoding="cp1252",
        separator=";",
    )
    assert rep.summary() == (
        "reports_a.csv: 38 rows read, 36 kept, 2 dropped (empty paragraph_text: rows 5, 17); "
        "encoding cp1252, separator ';'\nWarnings: the file is not UTF-8"
    )
    rep.separator = "\t"
    rep.warnings = []
    assert rep.summary().endswith("separator tab")


def test_summary_lists_many_rows_briefly() -> None:
    rep = InputReport("f.csv", 100, 70, [DroppedRow(r, "empty paragraph_text") for r in range(2, 32)], [], "utf-8", ",")
    assert "rows 2, 3, 4" in rep.summary()
    assert "21 and 10 more" in rep.summary()


# ---------------------------------------------------------------------------- xlsx


def make_xlsx(path: Path, rows: list[list[object]], extra_sheet: bool = False) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Paragraphs"
    for r in rows:
        ws.append(r)
    if extra_sheet:
        wb.create_sheet("Notes").append(["ignored"])
    wb.save(path)
    return path


def test_xlsx_first_sheet_as_strings(tmp_path: Path) -> None:
    path = make_xlsx(
        tmp_path / "book.xlsx",
        [
            ["Paragraph_Text", "pdf_file_name", "page"],
            ["Line one\nline two, with comma", "r.pdf", 3],
            [None, "s.pdf", 4],
            ["Second", "0012", 5],
        ],
        extra_sheet=True,
    )
    table = read_input(path)
    rep = table.report
    assert rep.encoding == "xlsx" and rep.separator is None
    assert records(table) == [
        {"row": 2, "paragraph_text": "Line one\nline two, with comma", "pdf_file_name": "r.pdf", "page": "3"},
        {"row": 4, "paragraph_text": "Second", "pdf_file_name": "0012", "page": "5"},
    ]
    assert rep.dropped == [DroppedRow(3, "empty paragraph_text")]
    assert rep.notes == ["the workbook has 2 sheets; the first, 'Paragraphs', was read (the others: 'Notes')"]
    assert rep.sheet == "Paragraphs" and rep.text_column == "Paragraph_Text"
    assert rep.summary().startswith("book.xlsx: 3 rows read, 2 kept, 1 dropped")
    assert "Excel workbook" in rep.summary()


def test_xlsx_upload_tuple(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path / "up.xlsx", [["paragraph_text"], ["Hello"]])
    table = read_input(("up.xlsx", path.read_bytes()))
    assert table.file_name == "up.xlsx"
    assert table.frame["paragraph_text"].tolist() == ["Hello"]


def test_xlsx_saved_with_csv_name_is_read(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path / "tmp.xlsx", [["paragraph_text"], ["Hello"]])
    table = read_input(("really_excel.csv", path.read_bytes()))
    assert table.report.encoding == "xlsx"
    assert table.frame["paragraph_text"].tolist() == ["Hello"]
    assert any("really an Excel workbook" in n for n in table.report.notes)
    assert not any("Excel workbook" in w for w in table.report.warnings)


def test_corrupt_xlsx(tmp_path: Path) -> None:
    good = make_xlsx(tmp_path / "g.xlsx", [["paragraph_text"], ["x"]]).read_bytes()
    bad = write(tmp_path, "broken.xlsx", good[: len(good) // 2])
    with pytest.raises(InputError) as exc:
        read_input(bad)
    assert exc.value.file_name == "broken.xlsx"
    assert str(exc.value).startswith("broken.xlsx: ")
    assert "damaged" in str(exc.value)


def test_text_named_xlsx_is_corrupt(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^fake\.xlsx: .*not an Excel workbook"):
        read_input(write(tmp_path, "fake.xlsx", b"paragraph_text\nx\n"))


def test_xlsx_header_only(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path / "head.xlsx", [["paragraph_text", "pdf_file_name"]])
    with pytest.raises(InputError, match=r"^head\.xlsx: .*no data rows"):
        read_input(path)


# ---------------------------------------------------------------------------- upload form, several files


def test_upload_tuple_csv() -> None:
    table = read_input(("upload.csv", "paragraph_text;pdf_file_name\nÜber;x.pdf\n".encode("cp1252")))
    assert table.file_name == "upload.csv"
    assert table.report.file_name == "upload.csv"
    assert table.report.encoding == "cp1252"
    assert records(table) == [{"row": 2, "paragraph_text": "Über", "pdf_file_name": "x.pdf"}]


def test_read_inputs_order_and_duplicate_names(tmp_path: Path) -> None:
    a = write(tmp_path, "a.csv", b"paragraph_text\nA\n")
    b = ("b.csv", b"paragraph_text\nB\n")
    tables = read_inputs([b, a])
    assert [t.file_name for t in tables] == ["b.csv", "a.csv"]
    assert [t.frame["paragraph_text"].tolist() for t in tables] == [["B"], ["A"]]
    with pytest.raises(InputError, match=r"^a\.csv: .*appears twice"):
        read_inputs([a, ("a.csv", b"paragraph_text\nC\n")])


def test_find_input_files(tmp_path: Path) -> None:
    for name in ("b.csv", "a.xlsx", "c.CSV", "notes.txt", "~$a.xlsx", "old.xls"):
        write(tmp_path, name, b"x")
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "d.csv", b"x")
    assert [p.name for p in find_input_files(tmp_path)] == ["a.xlsx", "b.csv", "c.CSV"]


def test_find_input_files_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(InputError) as exc:
        find_input_files(missing)
    assert exc.value.file_name == str(missing)
    assert "does not exist" in str(exc.value)
    write(tmp_path, "readme.txt", b"hello")
    with pytest.raises(InputError) as exc:
        find_input_files(tmp_path)
    assert exc.value.file_name == str(tmp_path)
    assert "no .csv or .xlsx files" in str(exc.value)


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "data",
    [b"", b"paragraph_text,pdf_file_name\n", b"paragraph_text,pdf_file_name", b"\n\n  \n"],
    ids=["zero-bytes", "header-only", "header-no-newline", "whitespace"],
)
def test_empty_files(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(InputError) as exc:
        read_input(write(tmp_path, "empty.csv", data))
    assert exc.value.file_name == "empty.csv"
    assert "no data rows" in str(exc.value)


def test_all_paragraphs_empty(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^blank\.csv: .*all 2 rows have an empty paragraph_text"):
        read_input(write(tmp_path, "blank.csv", b"paragraph_text,pdf_file_name\n,a.pdf\n ,b.pdf\n"))


@pytest.mark.parametrize(
    ("data", "what"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "PDF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10", "PNG"),
        (b"paragraph_text\nabc\x00def\n", "NUL bytes"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, ".xls"),
        (bytes(range(1, 9)) * 50, "control characters"),
    ],
    ids=["pdf", "png", "nul", "ole-xls", "control"],
)
def test_binary_files_rejected(tmp_path: Path, data: bytes, what: str) -> None:
    with pytest.raises(InputError) as exc:
        read_input(write(tmp_path, "report.csv", data))
    msg = str(exc.value)
    assert msg.startswith("report.csv: ")
    assert "not a text" in msg
    assert what in msg


def test_missing_paragraph_text_lists_columns(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        read_input(write(tmp_path, "cols.csv", b"pdf_file_name;text;page\na.pdf;x;1\n"))
    msg = str(exc.value)
    assert msg.startswith("cols.csv: ")
    assert "no 'paragraph_text' column" in msg
    assert "'pdf_file_name', 'text', 'page'" in msg


def test_unsupported_extensions(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^old\.xls: old Excel \.xls workbooks are not supported"):
        read_input(write(tmp_path, "old.xls", b"\xd0\xcf\x11\xe0"))
    with pytest.raises(InputError, match=r"^data\.json: unsupported file type \(\.json\)"):
        read_input(("data.json", b"{}"))


def test_missing_path() -> None:
    with pytest.raises(InputError, match=r"^ghost\.csv: file not found"):
        read_input(Path("/nonexistent/dir/ghost.csv"))


def test_parser_error_names_the_row(tmp_path: Path) -> None:
    data = b'pdf_file_name,paragraph_text\na.pdf,"ok\nstill ok"\nb.pdf,fine\nc.pdf,we invested 5, then 6\n'
    with pytest.raises(InputError) as exc:
        read_input(write(tmp_path, "bad.csv", data))
    msg = str(exc.value)
    assert msg.startswith("bad.csv: the CSV cannot be read: row 4 has 3 cells but the header has 2")
    assert "','" in msg


def test_unclosed_quote_names_the_row(tmp_path: Path) -> None:
    data = b'paragraph_text,pdf_file_name\nfine,a.pdf\n"never closed,b.pdf\nmore,c.pdf\n'
    with pytest.raises(InputError) as exc:
        read_input(write(tmp_path, "quote.csv", data))
    assert str(exc.value).startswith("quote.csv: the CSV cannot be read: a double quote opened in row 3")


# ---------------------------------------------------------------------------- scale and samples


def test_100k_rows_with_quoted_breaks(tmp_path: Path) -> None:
    lines = ["pdf_file_name;paragraph_text"]
    for i in range(100_000):
        text = "" if i % 1000 == 0 else f'"Paragraph {i}, with comma\nand a break"'
        lines.append(f"FfBF_Inv{i % 7}_R_2024.pdf;{text}")
    path = write(tmp_path, "big.csv", ("\n".join(lines) + "\n").encode("cp1252"))
    table = read_input(path)
    assert table.report.rows_read == 100_000
    assert table.report.rows_kept == 99_900
    assert table.report.dropped[:2] == [DroppedRow(2, "empty paragraph_text"), DroppedRow(1002, "empty paragraph_text")]
    assert table.frame["paragraph_text"].iloc[0] == "Paragraph 1, with comma\nand a break"


def test_shipped_samples_read_cleanly() -> None:
    files = find_input_files(SAMPLES)
    assert [p.name for p in files] == ["investor_reports_2024_part1.csv", "investor_reports_2024_part2.csv"]
    tables = read_inputs(files)
    total = sum(t.report.rows_kept for t in tables)
    assert 40 <= total <= 50
    for t in tables:
        rep = t.report
        assert (rep.encoding, rep.separator) == ("utf-8", ",")
        assert rep.dropped == [] and rep.warnings == []
        assert rep.rows_kept == rep.rows_read
        assert list(t.frame.columns) == ["row", "paragraph_text", "pdf_file_name", "page"]  # every input column
        assert t.frame["paragraph_text"].str.len().min() > 40
        prefixes = t.frame["pdf_file_name"].str.split("_").str[0]
        assert set(prefixes) <= {"FfBF", "Nature100", "UNPRI"}
    frames = pd.concat([t.frame for t in tables])
    investors = set(frames["pdf_file_name"].str.split("_").str[1])
    assert 6 <= len(investors) <= 8
    texts = frames["paragraph_text"].tolist()
    assert any("\n" in s for s in texts)
    assert any('"' in s and "," in s for s in texts)


# ---------------------------------------------------------------------------- sheet and text column


def make_book(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        sheet = wb.create_sheet(name)
        for row in rows:
            sheet.append(row)
    wb.save(path)
    return path


def test_data_on_sheet_two_is_read_with_a_note(tmp_path: Path) -> None:
    path = make_book(tmp_path / "w.xlsx", {"About": [["notes"], ["exported 2026"]],
                                           "Data": [["pdf_file_name", "paragraph_text"], ["r.pdf", "We invested."]]})
    table = read_input(path)
    assert records(table) == [{"row": 2, "paragraph_text": "We invested.", "pdf_file_name": "r.pdf"}]
    assert table.report.sheet == "Data" and table.report.warnings == []
    assert table.report.notes == ["sheet 'Data' was read: the first of 2 sheets with a 'paragraph_text' column "
                                  "(the others: 'About')"]


def test_no_sheet_with_the_text_column_names_sheets_and_columns(tmp_path: Path) -> None:
    path = make_book(tmp_path / "w.xlsx", {"About": [["notes"], ["x"]], "Data": [["report", "Text"], ["r.pdf", "y"]]})
    with pytest.raises(ChoiceNeeded) as exc:
        read_input(path)
    message = str(exc.value)
    assert message.startswith("w.xlsx: no sheet of the workbook has a 'paragraph_text' column")
    assert "'About' ('notes'); 'Data' ('report', 'Text')" in message
    assert message.endswith("Choose the sheet and the column that holds the paragraphs.")


def test_sheet_and_text_column_chosen(tmp_path: Path) -> None:
    path = make_book(tmp_path / "w.xlsx", {"About": [["notes"], ["x"]],
                                           "Data": [["report", "Text", "paragraph_text"], ["r.pdf", "Ours", "theirs"]]})
    for sheet in ("Data", "data", "2"):  # by name, without case, or by number
        table = read_input(InputSource(path, sheet=sheet, text_column="text"))
        assert records(table) == [{"row": 2, "paragraph_text": "Ours", "pdf_file_name": "",
                                   "report": "r.pdf", "input_paragraph_text": "theirs"}]
        assert table.report.sheet == "Data" and table.report.text_column == "Text"
        assert "sheet 'Data' was read, as chosen (of 2 sheets)" in table.report.notes
        assert "the paragraphs were read from the column 'Text', as chosen" in table.report.notes
    # the keyword arguments do the same (the command line gives one choice for every file)
    assert records(read_inputs([path], sheet="Data", text_column="Text")[0])[0]["paragraph_text"] == "Ours"


def test_unknown_sheet_or_column_names_file_and_choices(tmp_path: Path) -> None:
    path = make_book(tmp_path / "w.xlsx", {"One": [["paragraph_text"], ["x"]], "Two": [["a"], ["y"]]})
    with pytest.raises(ChoiceNeeded) as exc:
        read_input(path, sheet="Three")
    assert str(exc.value) == ("w.xlsx: the workbook has no sheet 'Three'. Its sheets: 'One', 'Two' "
                              "(give a name or a number from 1 to 2).")
    with pytest.raises(ChoiceNeeded) as exc:
        read_input(path, sheet="Two", text_column="body")
    assert str(exc.value).startswith("w.xlsx: there is no column 'body' to read the paragraphs from. "
                                     "Columns found: 'a'.")


def test_csv_text_column_chosen_and_missing(tmp_path: Path) -> None:
    path = write(tmp_path, "coded.csv", b"id;Absatz;Bericht\n1;Wir investieren.;r.pdf\n")
    with pytest.raises(ChoiceNeeded) as exc:
        read_input(path)
    assert "coded.csv" in str(exc.value) and "'id', 'Absatz', 'Bericht'" in str(exc.value)
    table = read_input(path, text_column="Absatz")
    assert table.frame["paragraph_text"].tolist() == ["Wir investieren."]
    assert list(table.frame.columns) == ["row", "paragraph_text", "pdf_file_name", "id", "Bericht"]
    # a sheet means nothing to a text file: read, and said so
    table = read_input(path, sheet="Data", text_column="Absatz")
    assert any("a text file has one table" in n for n in table.report.notes)


def test_table_layout_reads_the_header_only(tmp_path: Path) -> None:
    book = make_book(tmp_path / "w.xlsx", {"About": [["notes"]], "Data": [["pdf_file_name", "paragraph_text", None, "page"]]})
    assert table_layout(book) == TableLayout("w.xlsx", ("About", "Data"), "Data",
                                             ("pdf_file_name", "paragraph_text", "column 3", "page"))
    assert table_layout(book, sheet="1").columns == ("notes",)
    with pytest.raises(InputError):
        table_layout(book, sheet="Nope")
    csv_file = write(tmp_path, "a.csv", 'sep=;\r\n"x;y";paragraph_text\r\n1;2\r\n'.encode("cp1252"))
    assert table_layout(csv_file) == TableLayout("a.csv", (), None, ("x;y", "paragraph_text"))
    with pytest.raises(InputError, match="PDF"):
        table_layout(("r.csv", b"%PDF-1.7"))


# ---------------------------------------------------------------------------- the package


def test_every_name_of_core_inputs_resolves_and_quoting_stays_light() -> None:
    """core.inputs loads each name's module at first use: every public name (and the module-level
    names the single module had) resolves, and quoting a value or checking the limits does not
    bring pandas, numpy or openpyxl (a fresh interpreter, since this one has them already)."""
    code = ("import sys\n"
            "from core.inputs import ChoiceNeeded, InputLimits, InputSource, excerpt, input_limits\n"
            "assert excerpt('\\x1b[31mred') == 'red' and input_limits({}) == InputLimits()\n"
            "print(','.join(m for m in ('pandas', 'numpy', 'openpyxl') if m in sys.modules))\n"
            "import core.inputs\n"
            "for name in [*core.inputs.__all__, 'EXCERPT_CHARS', 'LIMIT_SETTINGS', 'SourceLike']:\n"
            "    getattr(core.inputs, name)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
