"""Decoding a text table's bytes whatever tool wrote them.

UTF-8 (with or without BOM), UTF-16 with BOM (Excel's "Unicode text"), cp1252 (Excel's "CSV" on
Windows) or, as a last resort, latin-1; rows pasted together from several sources can mix UTF-8
and cp1252, and are then decoded line by line. What was detected is a note, what may be wrong a
warning, naming the rows concerned.
"""

from __future__ import annotations

import numpy as np

from core.inputs.messages import format_rows, input_error
from core.inputs.result import Note
from core.inputs.separators import SEP_LINE, SEPARATORS


def decode(file_name: str, data: bytes) -> tuple[str, str, list[str]]:
    """Decode bytes; return (text, encoding name, warnings)."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig", []
        except UnicodeDecodeError:
            pass  # a BOM followed by non-UTF-8 bytes: fall through to the legacy encodings
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise input_error(
                file_name,
                "the file starts like UTF-16 text but cannot be decoded. Save it again as "
                "CSV UTF-8.",
            ) from None
        return text.lstrip("\ufeff"), "utf-16", [
            Note("the file is UTF-16 (Excel 'Unicode text'); it was decoded as such")
        ]
    else:
        try:
            return data.decode("utf-8"), "utf-8", []
        except UnicodeDecodeError:
            pass
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 BOM in front of legacy-encoded text
    # Rows pasted together from several sources can mix UTF-8 and cp1252. Decoding the whole
    # file as cp1252 would garble every UTF-8 row; the per-line pass runs only when the bytes
    # hold something that looks like UTF-8, so a plain cp1252 export costs one quick scan.
    if _has_utf8_sequence(data):
        mixed = _decode_per_line(data)
        if mixed is not None:
            return mixed
    try:
        text = data.decode("cp1252")
        return text, "cp1252", [
            Note("the file is not UTF-8; it was decoded as cp1252 (Windows/Excel). Check that "
                 "accented letters and symbols look right, or save it as 'CSV UTF-8'.")
        ]
    except UnicodeDecodeError:
        text = data.decode("latin-1")
        return text, "latin-1", [
            "the file is neither UTF-8 nor cp1252; it was decoded as latin-1, so some "
            "characters may be wrong. Save it as 'CSV UTF-8' to be sure."
        ]


def _has_utf8_sequence(data: bytes, chunk: int = 1 << 24) -> bool:
    """Whether ``data`` holds a UTF-8 lead byte followed by a continuation byte. Text that is not
    valid UTF-8 as a whole and has none is plainly legacy-encoded. Scanned with numpy in chunks
    (overlapping by one byte): a regex takes several times as long on a large file."""
    array = np.frombuffer(data, dtype=np.uint8)
    for start in range(0, max(len(array) - 1, 0), chunk):
        part = array[start : start + chunk + 1]
        lead, follow = part[:-1], part[1:]
        if bool(((lead >= 0xC2) & (lead <= 0xF4) & (follow >= 0x80) & (follow <= 0xBF)).any()):
            return True
    return False


def _decode_per_line(data: bytes) -> tuple[str, str, list[str]] | None:
    """Decode each line as UTF-8 when it is valid UTF-8, else as cp1252 (else latin-1).

    Returns None when no line holds non-ASCII UTF-8, i.e. the file is plainly legacy-encoded.
    A line break byte never occurs inside a UTF-8 or cp1252 character, so splitting the bytes
    on it is safe.
    """
    lines = data.split(b"\n")
    decoded: list[str] = []
    legacy: dict[str, list[int]] = {"cp1252": [], "latin-1": []}
    utf8_seen = False
    for i, line in enumerate(lines):
        try:
            decoded.append(line.decode("utf-8"))
            utf8_seen = utf8_seen or not line.isascii()
        except UnicodeDecodeError:
            try:
                decoded.append(line.decode("cp1252"))
                legacy["cp1252"].append(i)
            except UnicodeDecodeError:
                decoded.append(line.decode("latin-1"))
                legacy["latin-1"].append(i)
    if not utf8_seen:
        return None
    sep_line = SEP_LINE.match(decoded[0] + "\n")
    skip_first = bool(sep_line and sep_line.group(1) in SEPARATORS)  # as read_text skips it
    row_of_line = _rows_of_lines(lines, skip_first=skip_first)
    warnings = []
    for encoding, where in legacy.items():
        if where:
            rows = sorted({row_of_line[i] for i in where})
            word = "row" if len(rows) == 1 else "rows"
            warnings.append(
                f"the file mixes UTF-8 and other text: {word} {format_rows(rows)} "
                f"{'is' if len(rows) == 1 else 'are'} not UTF-8 and "
                f"{'was' if len(rows) == 1 else 'were'} read as {encoding}. Check the accented "
                "letters there, or save the file as 'CSV UTF-8'."
            )
    return "\n".join(decoded), "utf-8/cp1252 (per line)", warnings


def _rows_of_lines(lines: list[bytes], *, skip_first: bool) -> list[int]:
    """The spreadsheet row of each physical line: a line inside an open double quote belongs to
    the row where the quote opened (an escaped quote "" counts twice, so it cancels out)."""
    rows: list[int] = []
    row = 0 if skip_first else 1  # an Excel 'sep=' first line is not a row
    in_quotes = False
    for line in lines:
        rows.append(max(row, 1))
        if line.count(b'"') % 2:
            in_quotes = not in_quotes
        if not in_quotes:
            row += 1
    return rows
