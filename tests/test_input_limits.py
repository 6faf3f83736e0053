"""Hostile and broken inputs (issue 9, items 10 and 11): huge paragraphs, zip bombs, special
files, invisible text, mixed encodings, terminal escapes and megabyte-long echoes. Real files
and real bytes throughout; every limit is met before the expensive part starts."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import threading
import time
import zipfile
from pathlib import Path
from typing import Callable

import openpyxl
import pytest

from core.errors import InputError
from core.inputs import (
    DroppedRow,
    InputLimits,
    excerpt,
    input_limits,
    read_input,
    read_inputs,
)
from core.tokens import PIECE_CHARS, count_each, count_tokens, encoder_for, token_length

MODEL = "gpt-4o-mini"
TASK1 = "investment_activity_classification"
LIMIT_NAMES = ("BDASSET_MAX_INPUT_BYTES", "BDASSET_MAX_INPUT_ROWS", "BDASSET_MAX_INPUT_CELLS",
               "BDASSET_MAX_PARAGRAPH_CHARS")


@pytest.fixture(autouse=True)
def default_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in LIMIT_NAMES:
        monkeypatch.delenv(name, raising=False)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def within(seconds: float, call: Callable[[], object]) -> object:
    """Run ``call`` in a thread; fail (instead of hanging the suite) if it takes longer."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome.get("value")


# ---------------------------------------------------------------------------- limits and quoting


def test_limits_defaults_and_settings() -> None:
    assert input_limits({}) == InputLimits(
        max_bytes=200 * 1024 * 1024, max_rows=500_000, max_cells=20_000_000, max_paragraph_chars=100_000
    )
    env = {"BDASSET_MAX_INPUT_ROWS": "1_000_000", "BDASSET_MAX_PARAGRAPH_CHARS": " 5000 ", "OTHER": "x"}
    assert input_limits(env) == InputLimits(max_rows=1_000_000, max_paragraph_chars=5000)
    for bad in ("lots", "0", "-3", "1.5"):
        with pytest.raises(ValueError, match="BDASSET_MAX_INPUT_BYTES"):
            input_limits({"BDASSET_MAX_INPUT_BYTES": bad})


def test_bad_limit_setting_is_an_input_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BDASSET_MAX_INPUT_ROWS", "many")
    with pytest.raises(InputError, match=r"^a\.csv: .*BDASSET_MAX_INPUT_ROWS='many' is not a positive whole number"):
        read_input(write(tmp_path, "a.csv", b"paragraph_text\nx\n"))


def test_excerpt() -> None:
    assert excerpt("short") == "short"
    long = excerpt("x" * 5_000_000)
    assert len(long) == 200 and long.endswith("…")
    assert excerpt("\x1b[31mred\x1b[0m\x07") == "red"
    assert len(excerpt("y" * 100, limit=10)) == 10


# ---------------------------------------------------------------------------- 10: huge paragraph


def test_paragraph_over_the_limit_is_dropped_with_its_row(tmp_path: Path) -> None:
    data = b"pdf_file_name,paragraph_text\na.pdf,short one\nb.pdf," + b"a" * 1_000_001 + b"\nc.pdf,last\n"
    table = read_input(write(tmp_path, "long.csv", data))
    assert table.frame["paragraph_text"].tolist() == ["short one", "last"]
    assert table.report.dropped == [DroppedRow(
        3, "paragraph too long: 1,000,001 characters, the limit is 100,000 (BDASSET_MAX_PARAGRAPH_CHARS)"
    )]
    assert "paragraph too long: 1,000,001 characters" in table.report.summary()


def test_paragraph_limit_is_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BDASSET_MAX_PARAGRAPH_CHARS", "10")
    data = "paragraph_text\n0123456789\n0123456789X\n".encode()
    table = read_input(write(tmp_path, "p.csv", data))
    assert table.frame["paragraph_text"].tolist() == ["0123456789"]
    assert [d.row for d in table.report.dropped] == [3]
    with pytest.raises(InputError, match=r"longer than 10 characters \(set BDASSET_MAX_PARAGRAPH_CHARS"):
        read_input(write(tmp_path, "q.csv", b"paragraph_text\n0123456789X\n\n"))


def test_token_counter_never_raises_on_long_text() -> None:
    # bpe-openai raises on 1,000,000+ characters, and on more than 200,000 tokens in one call
    # (900,000 CJK characters are about 1.7 million tokens).
    assert count_tokens("a" * 1_000_001, model=MODEL) > 0
    cjk = "".join(chr(0x4E00 + i % 20_000) for i in range(900_000))
    assert count_tokens(cjk, model=MODEL) > 200_000
    counts = count_each(["short", "b" * 1_500_000], model=MODEL)
    assert counts.exact and all(n > 0 for n in counts.each)


def test_token_counter_pieces_add_up_to_the_whole() -> None:
    words = ("biodiversity", "investment", "in", "the", "fund", "café", "€5m", "自然", "\n")
    text = " ".join(words[(i * 7) % len(words)] for i in range(60_000))
    assert PIECE_CHARS < len(text) < 1_000_000
    encoder = encoder_for(MODEL)
    assert token_length(encoder, text) == len(encoder.encode_ordinary(text))


def test_token_counter_estimates_what_the_tokenizer_refuses() -> None:
    class Refuses:
        def encode_ordinary(self, text: str) -> list[int]:
            raise ValueError("Input too long to encode safely")

    assert token_length(Refuses(), "x" * 400) == 100
    assert token_length(Refuses(), "") == 0


def test_submit_with_a_million_character_paragraph(service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole submit, through the command line and the local backend: by default the long
    row is dropped with its reason; with the limit raised, it is sent and counted."""
    from core.cli import main

    path = write(tmp_path, "reports.csv",
                 b"pdf_file_name,paragraph_text\nFfBF_A_R.pdf,We invested EUR 5m in wetland restoration.\n"
                 b"FfBF_B_R.pdf," + b"word " * 200_001 + b"\n")

    def submit() -> tuple[int, dict, str]:
        out, err = io.StringIO(), io.StringIO()
        code = main(["submit", "--task", TASK1, "--input-file", str(path), "--json"], out=out, err=err,
                    service=service)
        return code, (json.loads(out.getvalue()) if code == 0 else {}), err.getvalue()

    code, result, err = submit()
    assert code == 0, err
    assert result["n_requests"] == 1
    assert result["inputs"][0]["dropped"] == [{"row": 3, "reason": (
        "paragraph too long: 1,000,004 characters, the limit is 100,000 (BDASSET_MAX_PARAGRAPH_CHARS)")}]

    monkeypatch.setenv("BDASSET_MAX_PARAGRAPH_CHARS", "2000000")
    code, result, err = submit()
    assert code == 0, err
    assert result["n_requests"] == 2
    assert result["estimate"]["input_tokens"] > 200_000


# ---------------------------------------------------------------------------- 11: xlsx bombs


def xlsx_with_sheet(tmp_path: Path, name: str, sheet_xml: bytes, *, level: int = 1) -> Path:
    """A real workbook (made by openpyxl) whose first sheet's XML is replaced by ``sheet_xml``."""
    template = tmp_path / f"template_{name}"
    wb = openpyxl.Workbook()
    wb.active.append(["paragraph_text"])
    wb.save(template)
    out = tmp_path / name
    with zipfile.ZipFile(template) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as dst:
        for info in src.infolist():
            data = sheet_xml if info.filename == "xl/worksheets/sheet1.xml" else src.read(info.filename)
            dst.writestr(info.filename, data)
    return out


def sheet(rows: bytes, dimension: str | None = None) -> bytes:
    dim = f'<dimension ref="{dimension}"/>'.encode() if dimension else b""
    return (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            + dim + b"<sheetData>" + rows + b"</sheetData></worksheet>")


HEADER_ROW = b'<row r="1"><c r="A1" t="inlineStr"><is><t>paragraph_text</t></is></c></row>'
SAME_ROW = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>'  # no r: each is the next row


def test_xlsx_declaring_millions_of_rows_is_refused_before_parsing(tmp_path: Path) -> None:
    # 2,000,000 rows in a ~400 KB file, as in the issue (a 448 KB file took 70 s and 595 MB).
    path = xlsx_with_sheet(tmp_path, "bomb.xlsx", sheet(HEADER_ROW + SAME_ROW * 2_000_000, "A1:A2000001"))
    assert path.stat().st_size < 1_000_000
    started = time.perf_counter()
    with pytest.raises(InputError) as exc:
        within(20, lambda: read_input(path))
    assert time.perf_counter() - started < 5
    message = str(exc.value)
    assert message.startswith("bomb.xlsx: the file declares more than 500,000 data rows, the limit.")
    assert "BDASSET_MAX_INPUT_ROWS" in message


def test_xlsx_declaring_too_many_cells_is_refused(tmp_path: Path) -> None:
    path = xlsx_with_sheet(tmp_path, "wide.xlsx", sheet(HEADER_ROW + SAME_ROW * 10, "A1:XFD100000"))
    with pytest.raises(InputError, match=r"declares more than 20,000,000 cells \(16,384 columns\).*BDASSET_MAX_INPUT_CELLS"):
        read_input(path)


def test_xlsx_unpacking_past_the_byte_limit_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = xlsx_with_sheet(tmp_path, "deep.xlsx", sheet(HEADER_ROW + SAME_ROW * 500_000))
    monkeypatch.setenv("BDASSET_MAX_INPUT_BYTES", "5000000")
    assert path.stat().st_size < 5_000_000
    with pytest.raises(InputError) as exc:
        within(5, lambda: read_input(path))
    assert re.match(r"deep\.xlsx: unpacked, the workbook is [\d,]+ bytes, over the limit of 5,000,000 bytes\. "
                    r".*set BDASSET_MAX_INPUT_BYTES to raise the limit", str(exc.value))


def test_xlsx_with_a_wrong_dimension_stops_at_the_row_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The dimension claims two rows; the rows are counted as they stream anyway.
    path = xlsx_with_sheet(tmp_path, "liar.xlsx", sheet(HEADER_ROW + SAME_ROW * 50_000, "A1:A2"))
    monkeypatch.setenv("BDASSET_MAX_INPUT_ROWS", "1000")
    with pytest.raises(InputError, match=r"^liar\.xlsx: the file has more than 1,000 data rows, the limit"):
        within(20, lambda: read_input(path))
    monkeypatch.setenv("BDASSET_MAX_INPUT_ROWS", "50000")
    assert read_input(path).report.rows_kept == 50_000


def test_xlsx_stray_far_right_cell_does_not_widen_every_row(tmp_path: Path) -> None:
    # One value in column XFD made pandas pad every row to 16,384 cells (2,000 rows: 33 million).
    header = (b'<row r="1"><c r="A1" t="inlineStr"><is><t>paragraph_text</t></is></c>'
              b'<c r="B1" t="inlineStr"><is><t>pdf_file_name</t></is></c></row>')
    rows = b"".join(
        f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>p{r}</t></is></c>'
        f'<c r="XFD{r}" t="inlineStr"><is><t>stray</t></is></c></row>'.encode()
        for r in range(2, 2002)
    )
    path = xlsx_with_sheet(tmp_path, "stray.xlsx", sheet(header + rows))
    table = within(20, lambda: read_input(path))
    assert table.frame["paragraph_text"].tolist()[:2] == ["p2", "p3"]
    assert table.frame["row"].tolist()[-1] == 2001
    assert table.report.rows_kept == 2000


def test_xlsx_blank_rows_keep_their_numbers(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A2"] = "paragraph_text"  # a blank first row above the header
    ws["A3"] = "first"
    ws["A5"] = "after a blank row"
    ws["A9"] = None
    wb.save(tmp_path / "gaps.xlsx")
    table = read_input(tmp_path / "gaps.xlsx")
    assert table.frame["row"].tolist() == [3, 5]
    assert table.report.dropped == [DroppedRow(4, "empty row")]


def test_csv_row_and_cell_limits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BDASSET_MAX_INPUT_ROWS", "100")
    ok = write(tmp_path, "ok.csv", b"paragraph_text\n" + b"x\n" * 100)
    assert read_input(ok).report.rows_read == 100
    # Blank lines are rows too: 10 million of them would otherwise all be parsed.
    blank = write(tmp_path, "blank.csv", b"paragraph_text\nx\n" + b"\n" * 10_000_000)
    with pytest.raises(InputError, match=r"^blank\.csv: the file has more than 100 data rows, the limit.*BDASSET_MAX_INPUT_ROWS"):
        within(10, lambda: read_input(blank))
    # pandas fills short rows up to the header's width: a wide header is bounded by cells.
    monkeypatch.setenv("BDASSET_MAX_INPUT_ROWS", "500000")
    monkeypatch.setenv("BDASSET_MAX_INPUT_CELLS", "10000")
    wide = write(tmp_path, "wide.csv", b"paragraph_text" + b",c" * 999 + b"\n" + b"x\n" * 20)
    with pytest.raises(InputError, match=r"more than 10,000 cells \(1,000 columns\).*BDASSET_MAX_INPUT_CELLS"):
        within(10, lambda: read_input(wide))
    # More columns than a spreadsheet holds is refused before pandas sees it.
    wider = write(tmp_path, "wider.csv", b"paragraph_text" + b";c" * 1_000_000 + b"\n" + b"x\n" * 20)
    with pytest.raises(InputError, match=r"^wider\.csv: the header has 1,000,001 columns, more than a spreadsheet holds"):
        within(5, lambda: read_input(wider))


def test_file_bytes_limit_before_reading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BDASSET_MAX_INPUT_BYTES", "100")
    big = write(tmp_path, "big.csv", b"paragraph_text\n" + b"x" * 200 + b"\n")
    with pytest.raises(InputError, match=r"^big\.csv: the file is 216 bytes, over the limit of 100 bytes\. .*BDASSET_MAX_INPUT_BYTES"):
        read_input(big)
    with pytest.raises(InputError, match=r"^up\.csv: the file is 216 bytes"):
        read_input(("up.csv", big.read_bytes()))
    assert read_input(write(tmp_path, "small.csv", b"paragraph_text\nx\n")).report.rows_kept == 1


# ---------------------------------------------------------------------------- 11: special files


def test_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=r"^pipe\.csv: this is a named pipe \(FIFO\), not a regular file"):
        within(5, lambda: read_input(fifo))
    with pytest.raises(InputError, match="named pipe"):
        within(5, lambda: read_inputs([fifo]))


def test_fifo_on_the_command_line_fails_cleanly(service, tmp_path: Path) -> None:
    from core.cli import main

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    out, err = io.StringIO(), io.StringIO()
    code = within(10, lambda: main(["submit", "--task", TASK1, "--input-file", str(fifo)], out=out, err=err,
                                   service=service))
    assert code != 0
    assert "pipe.csv: this is a named pipe (FIFO)" in err.getvalue()


def test_device_socket_and_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"^null: this is a device, not a regular file"):
        within(5, lambda: read_input(Path("/dev/null")))
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(InputError, match=r"^folder\.csv: this is a folder, not a file"):
        read_input(tmp_path / "folder.csv")
    sock_path = tmp_path / "s.csv"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(sock_path))
        with pytest.raises(InputError, match=r"^s\.csv: this is a socket"):
            within(5, lambda: read_input(sock_path))


def test_symlink_to_a_regular_file_is_read(tmp_path: Path) -> None:
    target = write(tmp_path, "real.csv", b"paragraph_text\nx\n")
    (tmp_path / "link.csv").symlink_to(target)
    assert read_input(tmp_path / "link.csv").frame["paragraph_text"].tolist() == ["x"]


# ---------------------------------------------------------------------------- 11: invisible text


def test_invisible_only_paragraphs_are_dropped(tmp_path: Path) -> None:
    cells = [
        "\u200b",  # zero-width space
        "\ufeff\ufeff",  # BOMs
        "\u200c \u200d\t\u2060",  # zero-width non-joiner, joiner, word joiner, whitespace
        "\u00ad",  # soft hyphen
        "\u2028\u00a0\u3000",  # line separator, no-break space, ideographic space: whitespace
        "\U000e0001\u2063",  # a tag character and an invisible separator (Cf, planes 14 and 0)
        "real text",
        "zero\u200dwidth inside is kept",
    ]
    data = ("paragraph_text,pdf_file_name\n" + "".join(f'"{c}",r.pdf\n' for c in cells)).encode()
    table = read_input(write(tmp_path, "zw.csv", data))
    assert table.frame["paragraph_text"].tolist() == ["real text", "zero\u200dwidth inside is kept"]
    reason = "paragraph_text has only invisible characters (zero-width, BOM)"
    assert table.report.dropped == [
        *(DroppedRow(r, reason) for r in range(2, 6)), DroppedRow(6, "empty paragraph_text"), DroppedRow(7, reason)
    ]
    assert f"{reason}: rows 2, 3, 4, 5, 7" in table.report.summary()


def test_invisible_characters_around_a_header_name(tmp_path: Path) -> None:
    data = "\u200bparagraph_text\u2060;pdf_file_name\nx;y\n".encode()
    assert read_input(write(tmp_path, "h.csv", data)).frame["paragraph_text"].tolist() == ["x"]


# ---------------------------------------------------------------------------- 11: mixed encodings


def test_mixed_utf8_and_cp1252_rows_are_decoded_per_line(tmp_path: Path) -> None:
    data = (
        "pdf_file_name;paragraph_text\n".encode()
        + "a.pdf;café in UTF-8\n".encode("utf-8")
        + "b.pdf;café in cp1252 – 5 m€\n".encode("cp1252")
        + 'c.pdf;"multi\nline in UTF-8: Ökosystem"\n'.encode("utf-8")
        + "d.pdf;second café in cp1252\n".encode("cp1252")
    )
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    table = read_input(write(tmp_path, "mixed.csv", data))
    assert table.frame["paragraph_text"].tolist() == [
        "café in UTF-8", "café in cp1252 – 5 m€", "multi\nline in UTF-8: Ökosystem", "second café in cp1252"
    ]
    assert table.report.encoding == "utf-8/cp1252 (per line)"
    assert table.report.warnings[0] == (
        "the file mixes UTF-8 and other text: rows 3, 5 are not UTF-8 and were read as cp1252. "
        "Check the accented letters there, or save the file as 'CSV UTF-8'."
    )


def test_mixed_encoding_rows_listed_briefly(tmp_path: Path) -> None:
    data = "paragraph_text\n".encode() + "Überblick\n".encode() + "café\n".encode("cp1252") * 30
    table = read_input(write(tmp_path, "many.csv", data))
    assert set(table.frame["paragraph_text"]) == {"Überblick", "café"}
    assert "rows 3, 4, 5" in table.report.warnings[0] and "and 10 more" in table.report.warnings[0]


def test_sep_line_and_bom_before_mixed_rows(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbfsep=;\n" + "paragraph_text\nnaïve\n".encode() + "naïve\n".encode("cp1252")
    table = read_input(write(tmp_path, "sep.csv", data))
    assert table.frame["paragraph_text"].tolist() == ["naïve", "naïve"]
    assert "row 3 is not UTF-8" in table.report.warnings[0]


# ---------------------------------------------------------------------------- 11: terminal escapes


def test_escape_sequences_and_controls_are_removed(tmp_path: Path) -> None:
    text = ("\x1b[31mRed\x1b[0m alert\x1b]0;owned\x07 and \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\, "
            "bell\x07 back\x08space del\x7f c1\x9b2J esc\x1bc done\ttab")
    filler = "We allocated EUR 5m to peatland restoration in 2024.,r.pdf\n" * 50  # a few escapes in a text file
    data = ("paragraph_text,pdf_file_name\n"
            f'"{text}\nsecond line","\x1b[2Jreport.pdf"\n'
            f"clean,clean.pdf\n{filler}").encode()
    table = read_input(write(tmp_path, "ansi.csv", data))
    assert table.frame["paragraph_text"].tolist()[:2] == [
        "Red alert and link, bell backspace del c12J esc done\ttab\nsecond line", "clean"]
    assert table.frame["pdf_file_name"].tolist()[:2] == ["report.pdf", "clean.pdf"]
    assert ("control characters or terminal escape sequences were removed from 1 paragraph_text and "
            "1 pdf_file_name cells") in table.report.warnings


def test_windows_line_breaks_in_cells_are_kept(tmp_path: Path) -> None:
    data = b'paragraph_text\r\n"one\r\ntwo"\r\n'
    table = read_input(write(tmp_path, "crlf.csv", data))
    assert table.frame["paragraph_text"].tolist() == ["one\r\ntwo"]
    assert table.report.warnings == ["no 'pdf_file_name' column; results cannot be linked to report files or investors"]


# ---------------------------------------------------------------------------- 11: long echoes


def test_megabyte_header_line_gives_a_short_message(tmp_path: Path) -> None:
    data = b"\x1b[31m" + b"x" * 5_000_000 + b"\nfoo\n"
    with pytest.raises(InputError) as exc:
        read_input(write(tmp_path, "head.csv", data))
    message = str(exc.value)
    assert len(message) < 500 and "\x1b" not in message
    assert "no 'paragraph_text' column" in message and "…" in message


def test_many_long_column_names_are_listed_briefly(tmp_path: Path) -> None:
    header = ",".join(f"column {i} " + "y" * 10_000 for i in range(1000))
    with pytest.raises(InputError) as exc:
        read_input(write(tmp_path, "cols.csv", (header + "\n" + "," * 999 + "\n").encode()))
    message = str(exc.value)
    assert len(message) < 2000 and "and 980 more" in message


def test_megabyte_broken_line_gives_a_short_message(tmp_path: Path) -> None:
    data = b"paragraph_text,pdf_file_name\nok,a.pdf\n" + b"z," * 2_000_000 + b"\n"
    with pytest.raises(InputError) as exc:
        read_input(write(tmp_path, "broken.csv", data))
    assert len(str(exc.value)) < 500
    assert "row 3" in str(exc.value)


def test_long_duplicate_column_names_are_shortened(tmp_path: Path) -> None:
    name = "d" * 1_000_000
    data = f"paragraph_text,{name},{name}\nx,1,2\n".encode()
    table = read_input(write(tmp_path, "dup.csv", data))
    assert all(len(w) < 300 for w in table.report.warnings)


def test_megabyte_file_name_is_shortened(tmp_path: Path) -> None:
    name = "n" * 3_000_000 + ".csv"
    with pytest.raises(InputError) as exc:
        read_input((name, b"no_text_column\nx\n"))
    assert len(str(exc.value)) < 1000
    table = read_input((name, b"paragraph_text\nx\n"))
    assert table.file_name == name  # the name itself is kept; only what is shown is cut
    assert len(table.report.summary()) < 1000
