"""From a raw frame of strings to the paragraphs: choosing the text column, cleaning the cells,
dropping the rows that cannot be labelled, and reporting all of it.

The paragraphs come from the chosen text column (matched without case), by default
``paragraph_text``; :class:`ChoiceNeeded` lists the columns there are when it is not found.
Control characters are removed, and a row is dropped, with its reason, when its paragraph is
empty, only invisible characters, or longer than the paragraph limit. The file's other columns
are kept as text under the names :mod:`core.columns` gives them.
"""

from __future__ import annotations

import pandas as pd

from core.columns import input_column_names
from core.inputs.cleaning import as_str, blank_chars, clean_name, header_names, remove_controls
from core.inputs.limits import LIMIT_SETTINGS, InputLimits, limit_hint
from core.inputs.messages import MAX_COLUMNS_LISTED, excerpt, input_error, quoted_names
from core.inputs.result import PDF_COLUMN, TEXT_COLUMN, DroppedRow, InputReport, InputTable, Note
from core.inputs.sources import ChoiceNeeded


def finish_paragraphs(
    file_name: str,
    raw: pd.DataFrame,
    encoding: str,
    separator: str | None,
    warnings: list[str],
    limits: InputLimits,
    header_row: int = 1,
    *,
    text_column: str | None = None,
) -> InputTable:
    """Turn a header-less raw frame (first row = header, on sheet row ``header_row``) into an
    InputTable, the paragraphs taken from ``text_column`` (default ``paragraph_text``)."""
    header = [clean_name(v) for v in raw.iloc[0].tolist()]
    body = raw.iloc[1:]
    rows_read = int(body.shape[0])

    lowered = [h.lower() for h in header]
    counts: dict[str, int] = {}
    for name in lowered:
        if name:
            counts[name] = counts.get(name, 0) + 1
    dupes = [name for name, c in counts.items() if c > 1]
    if dupes:
        shown = ", ".join(
            f"'{excerpt(next(h for h in header if h.lower() == d), 60)}' ({counts[d]} times)"
            for d in dupes[:MAX_COLUMNS_LISTED]
        )
        if len(dupes) > MAX_COLUMNS_LISTED:
            shown += f" and {len(dupes) - MAX_COLUMNS_LISTED:,} more"
        warnings.append(f"duplicate column names: {shown}")

    wanted = (text_column or TEXT_COLUMN).lower()
    names = [h.lower() for h in header_names(header)]  # an empty header cell is "column N"
    if wanted not in names:
        found = quoted_names(header) or "(none)"
        hint = ""
        if separator is None and len(header) == 1 and encoding != "xlsx":
            hint = " No separator (comma, semicolon or tab) was found in the header line."
        if text_column is None:
            what = ("there is no 'paragraph_text' column", "Choose the column that holds the paragraphs, or "
                    "rename it to paragraph_text.")
        else:
            what = (f"there is no column '{excerpt(text_column, 60)}' to read the paragraphs from",
                    "Choose one of the columns found.")
        raise ChoiceNeeded(excerpt(file_name), f"{what[0]}. Columns found: {found}.{hint} {what[1]}",
                           in_workbook=encoding == "xlsx")
    text_idx = names.index(wanted)
    if names.count(wanted) > 1:
        warnings.append(
            f"'{excerpt(header[text_idx], 60)}' appears {names.count(wanted)} times; the first one "
            f"(column {text_idx + 1}) was used"
        )
    if text_column is not None and wanted != TEXT_COLUMN:
        warnings.append(Note(f"the paragraphs were read from the column '{excerpt(header[text_idx] or names[text_idx], 60)}', "
                             "as chosen"))
    pdf_idx = lowered.index(PDF_COLUMN) if PDF_COLUMN in lowered and lowered.index(PDF_COLUMN) != text_idx else None
    if pdf_idx is not None and counts[PDF_COLUMN] > 1:
        warnings.append(
            f"'pdf_file_name' appears {counts[PDF_COLUMN]} times; the first one "
            f"(column {pdf_idx + 1}) was used"
        )

    if rows_read == 0:
        raise input_error(
            file_name,
            "the file has a header but no data rows. Add paragraphs below the header row.",
        )

    first = header_row + 1
    row_numbers = pd.Series(range(first, first + rows_read), dtype="int64", index=body.index)
    text, text_cleaned = remove_controls(as_str(body.iloc[:, text_idx]))
    text = text.str.strip()
    pdf_cleaned = 0
    if pdf_idx is None:
        pdf = pd.Series("", index=body.index, dtype="str")
        warnings.append(
            "no 'pdf_file_name' column; results cannot be linked to report files or investors"
        )
    else:
        pdf, pdf_cleaned = remove_controls(as_str(body.iloc[:, pdf_idx]))
        pdf = pdf.str.strip()
    if text_cleaned or pdf_cleaned:
        warnings.append(
            "control characters or terminal escape sequences were removed from "
            f"{text_cleaned:,} paragraph_text and {pdf_cleaned:,} pdf_file_name cells"
        )
    extras = _input_columns(header, body, skip=(text_idx, pdf_idx), warnings=warnings)

    # Zero-width spaces, BOMs and the like show nothing: a paragraph made only of them is empty.
    empty = text.str.strip(blank_chars()) == ""
    lengths = text.str.len()
    too_long = ~empty & (lengths > limits.max_paragraph_chars)
    dropped: list[DroppedRow] = []
    if bool(empty.any()):
        empty_body = body.loc[empty]
        all_blank = empty_body.apply(lambda col: as_str(col).str.strip() == "").all(axis=1)
        for r, blank, value in zip(row_numbers[empty].tolist(), all_blank.tolist(), text[empty].tolist()):
            if value:
                reason = "paragraph_text has only invisible characters (zero-width, BOM)"
            else:
                reason = "empty row" if blank else "empty paragraph_text"
            dropped.append(DroppedRow(row=int(r), reason=reason))
    if bool(too_long.any()):
        for r, n in zip(row_numbers[too_long].tolist(), lengths[too_long].tolist()):
            dropped.append(DroppedRow(
                row=int(r),
                reason=(
                    f"paragraph too long: {int(n):,} characters, the limit is "
                    f"{limits.max_paragraph_chars:,} ({LIMIT_SETTINGS['max_paragraph_chars']})"
                ),
            ))
        dropped.sort(key=lambda d: d.row)

    keep = ~(empty | too_long)
    # The string columns stay in pandas' own string storage: a round trip through Python
    # objects would cost more than all the cleaning above.
    frame = pd.DataFrame(
        {
            "row": row_numbers[keep].to_numpy(dtype="int64"),
            TEXT_COLUMN: text[keep].reset_index(drop=True),
            PDF_COLUMN: pdf[keep].reset_index(drop=True),
            **{name: column[keep].reset_index(drop=True) for name, column in extras.items()},
        }
    )
    frame = frame.astype({"row": "int64", TEXT_COLUMN: "str", PDF_COLUMN: "str", **dict.fromkeys(extras, "str")})

    if pdf_idx is not None:
        missing_pdf = int((frame[PDF_COLUMN] == "").sum())
        if missing_pdf:
            warnings.append(f"{missing_pdf} kept rows have an empty pdf_file_name")

    if frame.empty:
        if bool(too_long.any()):
            raise input_error(
                file_name,
                f"no usable data rows: all {rows_read:,} rows have an empty paragraph_text or one "
                f"longer than {limits.max_paragraph_chars:,} characters "
                f"({limit_hint('max_paragraph_chars')}).",
            )
        raise input_error(
            file_name,
            f"no data rows with text: all {rows_read} rows have an empty paragraph_text.",
        )

    report = InputReport(
        file_name=file_name,
        rows_read=rows_read,
        rows_kept=int(frame.shape[0]),
        dropped=dropped,
        warnings=[str(w) for w in warnings if not isinstance(w, Note)],
        encoding=encoding,
        separator=separator,
        notes=[str(w) for w in warnings if isinstance(w, Note)],
        text_column=header[text_idx] or names[text_idx],
    )
    return InputTable(file_name=file_name, frame=frame, report=report)


def _input_columns(header: list[str], body: pd.DataFrame, *, skip: tuple[int | None, ...],
                   warnings: list[str]) -> dict[str, pd.Series]:
    """Every column of an input file besides the paragraph and report columns, as text, under
    the names :func:`core.columns.input_column_names` gives them (the renames are warned about)."""
    positions = [i for i in range(len(header)) if i not in skip]
    names, renamed = input_column_names([header[i] or f"column {i + 1}" for i in positions])
    clash = [(old, new) for old, new in renamed if new.startswith("input_")]
    if clash:
        shown = ", ".join(f"'{excerpt(old, 60)}' as '{excerpt(new, 60)}'" for old, new in clash[:MAX_COLUMNS_LISTED])
        warnings.append(f"columns named like the product's own are kept under another name: {shown}")
    columns: dict[str, pd.Series] = {}
    cleaned = 0
    for name, position in zip(names, positions):
        column, count = remove_controls(as_str(body.iloc[:, position]))
        columns[name] = column
        cleaned += count
    if cleaned:
        warnings.append(f"control characters or terminal escape sequences were removed from {cleaned:,} cells "
                        "of the other columns")
    return columns
