"""Benchmark of preparing batch request files (not a test; pytest does not collect bench_*.py).

Run from the repository root:  .venv/bin/python tests/bench/bench_prepare.py [--rows N] [--runs R]

Builds N (default 100,000) task-1 rows with paragraphs of 400-900 characters, then times
(median of R runs, each into a fresh temporary folder):
  product   what Jobs.prepare + Jobs.submit do: iter_request_lines -> sizes -> plan_chunks,
            then iter_request_lines again -> write_request_files
  (a)       the previous tool's way: df.iterrows(), build each request dict, json.dumps it,
            join with newlines, write (same 50,000-line files)
  (b)       the floor: one write_bytes of the already-built payload
Checks first that a sample of the product's lines parse to exactly the requests (a) builds.
Goal: product >= 5x faster than (a).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT, ROOT / "tests" / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import pandas as pd  # noqa: E402

from benchdata import paragraphs, print_table, timed  # noqa: E402
from core.prompts import load_prompts  # noqa: E402
from core.requests import (  # noqa: E402
    ENDPOINT,
    MAX_REQUESTS_PER_FILE,
    iter_request_lines,
    make_custom_id,
    plan_chunks,
    write_request_files,
)
from core.tasks import INVESTMENT_ACTIVITY  # noqa: E402

MODEL = "gpt-4.1-mini"
MAX_TOKENS = 1000


def make_rows(n: int) -> pd.DataFrame:
    texts = paragraphs(n, seed=11)
    per_source = -(-n // 4)
    source = [i // per_source for i in range(n)]
    row = [2 + i % per_source for i in range(n)]
    return pd.DataFrame(
        {
            "custom_id": [make_custom_id(s, r) for s, r in zip(source, row)],
            "source_index": source,
            "csv_file_name": [f"FfBF_Investor{s}_report_2025.csv" for s in source],
            "row": row,
            "pdf_file_name": [f"FfBF_Investor{s}_report_2025.pdf" for s in source],
            "paragraph_text": texts,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    task = INVESTMENT_ACTIVITY
    prompts = load_prompts(task.name)
    rows = make_rows(args.rows)
    response_format = task.response_format()

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        counter = iter(range(10**6))

        def fresh() -> Path:
            folder = base / f"run{next(counter)}"
            return folder

        def product():
            folder = fresh()
            custom_ids = rows["custom_id"].tolist()
            texts = rows["paragraph_text"].tolist()
            kw = dict(task=task, prompts=prompts, model=MODEL, max_tokens=MAX_TOKENS)
            sizes = (len(line) for line in iter_request_lines(custom_ids, texts, **kw))
            chunks = plan_chunks(sizes, custom_ids=custom_ids)
            files = write_request_files(
                iter_request_lines(custom_ids, texts, **kw), folder, chunks=chunks, custom_ids=custom_ids
            )
            return folder, files

        def previous():
            folder = fresh()
            folder.mkdir()
            lines: list[str] = []
            number = 0

            def flush() -> None:
                nonlocal number
                (folder / f"requests_{number:03d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
                number += 1
                lines.clear()

            for _, r in rows.iterrows():
                request = {
                    "custom_id": r["custom_id"],
                    "method": "POST",
                    "url": ENDPOINT,
                    "body": {
                        "model": MODEL,
                        "messages": [
                            {"role": "system", "content": prompts.system},
                            {"role": "user", "content": prompts.render_user(r["paragraph_text"])},
                        ],
                        "max_completion_tokens": MAX_TOKENS,
                        "response_format": response_format,
                    },
                }
                lines.append(json.dumps(request))
                if len(lines) == MAX_REQUESTS_PER_FILE:
                    flush()
            if lines:
                flush()
            return folder

        # Fairness check: same requests (parsed), same file split.
        folder, files = product()
        old = previous()
        new_files = sorted(folder.glob("*.jsonl"))
        old_files = sorted(old.glob("*.jsonl"))
        assert [f.name for f in new_files] == [f.name for f in old_files], "different file split"
        payload = b"".join(f.read_bytes() for f in new_files)
        new_lines = payload.splitlines()
        old_lines = b"".join(f.read_bytes() for f in old_files).splitlines()
        assert len(new_lines) == len(old_lines) == args.rows
        sample = random.Random(3).sample(range(args.rows), min(2000, args.rows))
        for i in sample:
            assert json.loads(new_lines[i]) == json.loads(old_lines[i]), f"line {i} differs"
        shutil.rmtree(folder)
        shutil.rmtree(old)

        folders: list[Path] = []

        def t_product():
            folders.append(product()[0])

        def t_previous():
            folders.append(previous())

        def t_raw():
            folder = fresh()
            folder.mkdir()
            (folder / "raw.jsonl").write_bytes(payload)
            folders.append(folder)

        results = {}
        for name, fn in (("product", t_product), ("previous", t_previous), ("raw", t_raw)):
            times = []
            for _ in range(args.runs):
                t, _ = timed(fn, 1)
                times.append(t)
                for f in folders:
                    shutil.rmtree(f, ignore_errors=True)
                folders.clear()
            results[name] = sorted(times)[len(times) // 2]

    mb = len(payload) / 1e6
    p, a, b = results["product"], results["previous"], results["raw"]
    print_table(
        f"Prepare benchmark: {args.rows:,} task-1 requests, {len(files)} file(s), {mb:.0f} MB "
        f"(median of {args.runs} runs)",
        [
            ("product (2 serialisation passes + plan + write)", f"{p:.2f} s  ({args.rows / p:,.0f} req/s, {mb / p:.0f} MB/s)"),
            ("(a) previous: iterrows + dict + json.dumps + write", f"{a:.2f} s"),
            ("(b) floor: one write_bytes of the payload", f"{b:.2f} s"),
            ("speed-up product vs (a)  [goal >= 5x]", f"{a / p:.1f}x  {'OK' if a / p >= 5 else 'MISSED'}"),
            ("product / (b)", f"{p / b:.1f}x"),
            ("sample of lines equal to json requests", f"{len(sample):,} checked, all equal"),
        ],
    )


if __name__ == "__main__":
    main()
