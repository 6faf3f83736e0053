"""Benchmark of the Explore page's Excel download with 100,000 result rows (not a test; pytest
does not collect it).

Run from the repository root:  .venv/bin/python tests/bench/bench_explore_excel.py [--rows N]

Times the ways to write the same sheet (every text a string cell, never a formula), best of
two: (a) the product's ``core.explore.to_xlsx_bytes`` (pandas + openpyxl, then the cells that
openpyxl typed as formulas turned back into text); (b) openpyxl's write-only workbook, row by
row; (c) XlsxWriter in ``constant_memory`` mode with ``write_string``, row by row, when the
``xlsxwriter`` package can be imported (it is not a dependency of the product: install it
into a scratch folder and put that on PYTHONPATH to measure it). For scale, (d) the CSV
download of the same rows.
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


def openpyxl_write_only(frame: pd.DataFrame) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet("results")
    sheet.append(list(frame.columns))
    for values in frame.itertuples(index=False, name=None):
        row = []
        for value in values:
            if isinstance(value, str) and value.startswith(("=", "#")):
                cell = WriteOnlyCell(sheet, value)
                cell.data_type = "s"
                row.append(cell)
            else:
                row.append(None if value is pd.NA else value)
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xlsxwriter_constant_memory(frame: pd.DataFrame) -> bytes:
    import xlsxwriter

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.xlsx"
        book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_formulas": False,
                                               "strings_to_numbers": False, "strings_to_urls": False})
        sheet = book.add_worksheet("results")
        for j, name in enumerate(frame.columns):
            sheet.write_string(0, j, str(name))
        for i, values in enumerate(frame.itertuples(index=False, name=None), start=1):
            for j, value in enumerate(values):
                if isinstance(value, str):
                    sheet.write_string(i, j, value)
                elif value is not pd.NA and value is not None:
                    sheet.write_number(i, j, value)
        book.close()
        return path.read_bytes()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        job = build(Path(tmp) / "data", args.rows)
        frame = load_results(collected_jobs([job]))
        table = export_frame(frame)
        print(f"{args.rows:,} rows × {table.shape[1]} columns")
        t, data = best(lambda: to_xlsx_bytes(frame), repeat=1)
        print(f"(a) to_xlsx_bytes (pandas + openpyxl)        {t}  {len(data) / 1e6:5.1f} MB")
        t, data = best(lambda: openpyxl_write_only(table), repeat=1)
        print(f"(b) openpyxl write-only, row by row          {t}  {len(data) / 1e6:5.1f} MB")
        try:
            import xlsxwriter  # noqa: F401
        except ImportError:
            print("(c) XlsxWriter constant_memory              not installed (see the docstring)")
        else:
            t, data = best(lambda: xlsxwriter_constant_memory(table), repeat=1)
            print(f"(c) XlsxWriter constant_memory, write_string {t}  {len(data) / 1e6:5.1f} MB")
        t, data = best(lambda: to_csv_bytes(frame))
        print(f"(d) CSV download, for scale                  {t}  {len(data) / 1e6:5.1f} MB")


if __name__ == "__main__":
    main()
