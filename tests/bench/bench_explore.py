"""Benchmark of the Explore view with 100,000 result rows (not a test; pytest does not collect it).

Run from the repository root:  .venv/bin/python tests/bench/bench_explore.py [--rows N]

Writes N (default 100,000) task-1 result rows in the result-CSV format (10 source files, 400
reports of 80 investors, ~350-character paragraphs) plus a collected job in a temporary data
folder, then prints the median of a few runs of (a) the core explore functions (load, filter,
aggregate, CSV export) and (b) AppTest runs of the Explore page on those rows: the first render
on a fresh server (reads the files), the first render of a new session (another tab: the rows
are loaded), and reruns after choosing a filter value (what a user waits for), new or seen
before. This is the server's share of the wait; bench_explore_browser.py measures the browser's.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pandas as pd  # noqa: E402

from core.explore import (  # noqa: E402
    Filters, apply_filters, collected_jobs, load_results, score_distribution, scores_by, table_rows, to_csv_bytes,
)
from core.models import BatchRecord, Job  # noqa: E402
from core.registry import Registry  # noqa: E402
from core.results import result_columns  # noqa: E402
from core.tasks import INVESTMENT_ACTIVITY  # noqa: E402

WORDS = ("biodiversity invest fund bond wetland restoration capital portfolio risk engagement nature "
         "allocation hectares peatland mangrove loan equity dialogue stewardship credit").split()


def build(data_dir: Path, rows: int, files: int = 10) -> Job:
    rng = random.Random(7)
    job_id = "job_20261125_120000_bench"
    out = data_dir / INVESTMENT_ACTIVITY.output_folder / job_id
    out.mkdir(parents=True)
    per_file = rows // files
    paths = []
    for f in range(files):
        n = per_file if f < files - 1 else rows - per_file * (files - 1)
        inv = [rng.randrange(80) for _ in range(n)]
        frame = pd.DataFrame({
            "pdf_file_name": [f"FfBF_Investor{i}_Annual_Report_{2020 + (i + k) % 5}.pdf" for k, i in enumerate(inv)],
            "csv_file_name": f"paragraphs_{f}.csv",
            "paragraph_text": [" ".join(rng.choices(WORDS, k=45)) for _ in range(n)],
            "score": [rng.choice((0, 1)) for _ in range(n)],
            "explanation": [" ".join(rng.choices(WORDS, k=20)) for _ in range(n)],
            "status": "succeeded", "status_reason": "",
            "custom_id": [f"s{f}-r{r + 2}" for r in range(n)], "row": [r + 2 for r in range(n)],
            "model": "local-baseline-rules-v1", "batch_id": "batch_bench",
        })
        path = out / f"paragraphs_{f}.csv"
        columns = result_columns(INVESTMENT_ACTIVITY)
        frame = frame.reindex(columns=columns, fill_value="")  # columns added to the format later stay empty
        frame.to_csv(path, index=False)
        paths.append(str(path))
    job = Job(id=job_id, task=INVESTMENT_ACTIVITY.name, provider="local", model="local-baseline-rules-v1",
              max_tokens=1000, created_at="2026-11-25T12:00:00+00:00", job_dir=str(data_dir / "jobs" / job_id),
              output_dir=str(out), n_rows=rows, n_requests=rows, sources=[], prompts={}, estimate={},
              batches=[BatchRecord(key="b000", request_file="x", n_requests=rows, first_custom_id="s0-r2",
                                   last_custom_id="x", status="completed", batch_id="batch_bench",
                                   total=rows, completed=rows)],
              collected_at="2026-11-25T13:00:00+00:00", output_files=paths)
    with Registry(data_dir / "registry.json").transaction() as tx:
        tx.put_job(job.to_record())
    return job


def timed(fn, repeat: int = 3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        os.environ["BDASSET_DATA_DIR"] = str(data_dir)
        job = build(data_dir, args.rows)
        size = sum(Path(p).stat().st_size for p in job.output_files) / 1e6
        print(f"{args.rows:,} result rows in {len(job.output_files)} CSV files ({size:.0f} MB)")

        t_load, frame = timed(lambda: load_results(collected_jobs([job])))
        filters = Filters(investors=[f"Investor{i}" for i in range(10)], scores={"score": [1]}, text="mangrove")
        t_filter, shown = timed(lambda: apply_filters(frame, filters))
        t_text, _ = timed(lambda: apply_filters(frame, Filters(text="peatland loan")))
        t_agg, _ = timed(lambda: (score_distribution(frame), scores_by(frame, "investor"),
                                  scores_by(frame, "pdf_file_name"), table_rows(frame, page=1, page_size=500)))
        t_csv, data = timed(lambda: to_csv_bytes(frame), repeat=1)
        print("(a) core explore functions, median of 3:")
        print(f"    load_results                 {t_load:6.2f} s")
        print(f"    apply_filters (4 filters)    {t_filter:6.3f} s  -> {len(shown):,} rows")
        print(f"    apply_filters (text only)    {t_text:6.3f} s")
        print(f"    aggregates for all charts    {t_agg:6.3f} s")
        print(f"    CSV export of all rows       {t_csv:6.2f} s  ({len(data) / 1e6:.0f} MB)")

        from streamlit.testing.v1 import AppTest

        def first_render() -> AppTest:
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
            at.run()
            at.switch_page("pages/explore.py").run()
            assert not at.exception, [e.value for e in at.exception]
            assert any(f"of {args.rows:,} rows match" in m.value for m in at.markdown)
            return at

        t_first, at = timed(first_render, repeat=1)
        t_session, at = timed(first_render)
        picks = iter(range(100))

        def new_filter() -> None:  # a value not chosen before
            at.multiselect(key="explore_f_investor").set_value([f"Investor{next(picks)}"]).run()

        t_new, _ = timed(new_filter, repeat=5)

        def same_filters() -> None:  # back to every row, then the first value again: seen before
            at.multiselect(key="explore_f_investor").set_value([]).run()
            at.multiselect(key="explore_f_investor").set_value(["Investor0"]).run()

        t_again, _ = timed(same_filters, repeat=3)
        print("(b) AppTest run of the Explore page (app.py, then Explore), median of 3-5:")
        print(f"    first render, fresh server (reads the files)   {t_first:6.2f} s")
        print(f"    first render, new session (files loaded)       {t_session:6.2f} s")
        print(f"    rerun after choosing a new filter value        {t_new:6.2f} s")
        print(f"    rerun after going back to filters seen before  {t_again / 2:6.2f} s")

if __name__ == "__main__":
    main()
