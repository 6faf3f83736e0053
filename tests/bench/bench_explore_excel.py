"""Benchmark of the Explore page's Excel download with 100,000 result rows (not a test; pytest
does not collect it).

Run from the repository root:  .venv/bin/python tests/bench/bench_explore_excel.py [--rows N]

Times the ways to write the same sheet (every text a string cell, never a formula): (a) the
product's ``core.explore.to_xlsx_bytes`` (XlsxWriter in memory, shared strings, row by row);
(b) XlsxWriter in ``constant_memory`` mode (inline strings, rows through a temporary file); (c) pandas with openpyxl and the
formula-typed cells turned back into text, which the product did before. For scale, (d) the
CSV download of the same rows.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402

from bench_explore import build  # noqa: E402
from core.explore import collected_jobs, export_frame, load_results, to_csv_bytes, to_xlsx_bytes  # noqa: E402


def best(fn, repeat: int = 2) -> tuple[str, bytes]:
    """Wall-clock and CPU seconds of the fastest of ``repeat`` runs (CPU time tells the cost on
    a busy machine, where wall time also counts waiting for a core)."""
    runs, data = [], b""
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        data = fn()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    wall, cpu = min(runs)
    return f"{wall:6.2f} s wall, {cpu:6.2f} s CPU", data


def pandas_openpyxl(frame: pd.DataFrame) -> bytes:
    """What the product did before XlsxWriter: pandas with openpyxl, then the cells openpyxl
    typed as formulas or errors turned back into text."""
    import numpy as np
    from openpyxl.cell.cell import ERROR_CODES

    out = io.BytesIO()
    with pd.ExcelWriter(out, engine="openpyxl") as writer:
        frame.to_excel(writer, index=False, sheet_name="results")
        sheet = writer.sheets["results"]
        for j in range(frame.shape[1]):
            values = frame.iloc[:, j].to_numpy()
            typed = [isinstance(v, str) and (v.startswith("=") or v in ERROR_CODES) for v in values]
            for i in np.flatnonzero(typed):
                sheet.cell(row=int(i) + 2, column=j + 1).data_type = "s"
    return out.getvalue()


def xlsxwriter_constant_memory(frame: pd.DataFrame) -> bytes:
    """XlsxWriter in ``constant_memory`` mode: each row written out as it comes, texts inline."""
    import xlsxwriter

    out = io.BytesIO()
    with xlsxwriter.Workbook(out, {"constant_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
                                   "strings_to_urls": False}) as book:
        sheet = book.add_worksheet("results")
        sheet.write_row(0, 0, [str(c) for c in frame.columns])
        for i, row in enumerate(frame.to_numpy(dtype=object, na_value=None).tolist(), start=1):
            sheet.write_row(i, 0, row)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs of (a) and (b)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        job = build(Path(tmp) / "data", args.rows)
        frame = load_results(collected_jobs([job]))
        table = export_frame(frame)
        print(f"{args.rows:,} rows × {table.shape[1]} columns")
        t, data = best(lambda: to_xlsx_bytes(frame), repeat=args.repeat)
        print(f"(a) to_xlsx_bytes (XlsxWriter, in memory)       {t}  {len(data) / 1e6:5.1f} MB")
        t, data = best(lambda: xlsxwriter_constant_memory(table), repeat=args.repeat)
        print(f"(b) XlsxWriter, constant_memory                 {t}  {len(data) / 1e6:5.1f} MB")
        t, data = best(lambda: pandas_openpyxl(table), repeat=1)
        print(f"(c) pandas + openpyxl (the product before)      {t}  {len(data) / 1e6:5.1f} MB")
        t, data = best(lambda: to_csv_bytes(frame))
        print(f"(d) CSV download, for scale                     {t}  {len(data) / 1e6:5.1f} MB")


if __name__ == "__main__":
    main()
