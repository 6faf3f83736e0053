"""A previous-tool task-1 result folder as the parent of a task-2 job: its CSVs (with
``paragraph_text`` and ``score``) read, and the paragraphs scored 1 taken as task-2 rows.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pandas as pd

from core.errors import TaskError
from core.inputs import excerpt, read_table
from core.models import SourceRecord
from core.requests import make_custom_id


def rows_from_results(folder: Path | str) -> tuple[pd.DataFrame, list[SourceRecord], str]:
    """Task-2 rows from a previous-tool task-1 result folder (CSVs with ``paragraph_text`` and
    ``score``): the paragraphs scored 1, each with a custom_id of its file and row."""
    path = Path(os.path.expanduser(str(folder))).absolute()
    if not path.is_dir():
        raise TaskError(f"{excerpt(str(path))}: not a folder of the previous tool's task-1 results.")
    files = [p for p in sorted(path.glob("*.csv")) if p.is_file()]
    if not files:
        raise TaskError(f"{excerpt(str(path))}: holds no CSV file.")
    frames = []
    sources = []
    for index, file in enumerate(files):
        table = read_table(file)
        frame = table.frame
        if {"custom_id", "status"} <= set(frame.columns):
            raise TaskError(f"{file.name} is a result file of this product, not of the previous tool: start task 2 "
                            "from its job with --batch-id JOB.")
        missing = [c for c in ("paragraph_text", "score") if c not in frame.columns]
        if missing:
            raise TaskError(f"{file.name}: has no {' and no '.join(missing)} column, so it is not a task-1 result file.")
        scored = frame["score"].str.strip().isin({"1", "1.0"}) & (frame["paragraph_text"].str.strip() != "")
        selected = frame[scored]
        rows = [table.rows[i] for i in scored.to_numpy().nonzero()[0]]
        named = selected["csv_file_name"] if "csv_file_name" in selected.columns else pd.Series("", index=selected.index)
        frames.append(pd.DataFrame({
            "custom_id": [make_custom_id(index, row) for row in rows],
            "source_index": index,
            # the previous tool wrote the source CSV's name into each row; else this file's
            "csv_file_name": [name or file.name for name in named.tolist()],
            "row": rows,
            "pdf_file_name": selected["pdf_file_name"].tolist() if "pdf_file_name" in selected.columns else "",
            "paragraph_text": selected["paragraph_text"].tolist(),
        }))
        sources.append(SourceRecord(index=index, name=file.name, path=str(file), sha256=_sha256(file),
                                    rows_read=len(frame), rows_kept=len(selected), encoding=table.encoding,
                                    separator=table.separator, warnings=list(table.warnings)))
    rows = pd.concat(frames, ignore_index=True)
    if rows.empty:
        raise TaskError(f"No paragraph in {excerpt(str(path))} has score 1, so there is nothing for task 2.")
    total = sum(s.rows_read for s in sources)
    note = (f"{len(rows):,} paragraphs with score 1 taken from the previous tool's results in {excerpt(str(path))}; "
            f"{total - len(rows):,} others left out.")
    return rows, sources, note


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
