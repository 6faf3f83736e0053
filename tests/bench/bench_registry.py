"""Benchmark of the job registry (not a test; pytest does not collect bench_*.py).

Run from the repository root:  .venv/bin/python tests/bench/bench_registry.py [--jobs N]

Builds a registry of N (default 10,000) realistic jobs (~2 batches, ~1-2 KB each) in a
temporary folder, then prints the median of a few runs of: one transaction updating 200
batches across many jobs (with the number of file writes, which must be 1), a plain get_job
(cached and from a cold Registry object), find_job by batch id, list_jobs, and the file size.
"""

from __future__ import annotations

import argparse
import hashlib
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

from core.registry import Registry  # noqa: E402

TASKS = ("investment_activity_classification", "assetization_features_scoring")
STATUSES = ("validating", "in_progress", "finalizing", "completed", "failed", "expired")


def make_job(i: int, rng: random.Random) -> dict:
    day = 1 + i % 28
    stamp = f"2026{1 + i % 12:02d}{day:02d}_{i // 3600 % 24:02d}{i // 60 % 60:02d}{i % 60:02d}"
    job_id = f"job_{stamp}_{i:05x}"
    task = TASKS[i % 2]
    batches = []
    for n in range(2):
        requests = rng.randint(100, 50_000)
        done = rng.randint(0, requests)
        batches.append(
            {
                "key": f"{job_id}_b{n}",
                "batch_id": f"batch_{hashlib.md5(f'{i}-{n}'.encode()).hexdigest()[:24]}",
                "input_file_id": f"file-{hashlib.md5(f'in{i}-{n}'.encode()).hexdigest()[:24]}",
                "output_file_id": None,
                "error_file_id": None,
                "status": rng.choice(STATUSES),
                "request_counts": {"total": requests, "completed": done, "failed": 0},
                "request_file": f"data/requests/{job_id}/part_{n:03d}.jsonl",
                "rows": requests,
                "created_at": f"2026-{1 + i % 12:02d}-{day:02d}T10:15:00+00:00",
                "updated_at": None,
            }
        )
    return {
        "id": job_id,
        "task": task,
        "created_at": f"2026-{1 + i % 12:02d}-{day:02d}T10:15:{i % 60:02d}+00:00",
        "provider": "openai",
        "model": "gpt-4.1-mini",
        "base_url": None,
        "status": "in_progress",
        "parent_job_id": None,
        "input_files": [
            f"data/processed/biodiversity_related_paragraphs/FfBF_Investor{i % 97}_report_2025.csv"
        ],
        "output_dir": f"data/processed/{task}/{job_id}",
        "prompt": {
            "system_file": f"prompts/{task}_system.txt",
            "system_sha256": hashlib.sha256(f"sys{i % 5}".encode()).hexdigest(),
            "user_file": f"prompts/{task}_user.txt",
            "user_sha256": hashlib.sha256(f"user{i % 5}".encode()).hexdigest(),
        },
        "counts": {"rows": 2 * 25_000, "dropped": rng.randint(0, 40), "succeeded": 0,
                   "failed": 0, "expired": 0, "cancelled": 0, "refused": 0, "truncated": 0,
                   "invalid": 0, "missing": 0},
        "estimate": {"input_tokens": rng.randint(10**5, 10**7), "cost_usd": rng.random() * 40},
        "notes": "",
        "batches": batches,
    }


class WriteCounter:
    """Counts os.replace calls whose target is the registry file (one per file write)."""

    def __init__(self, path: Path) -> None:
        self.path = os.fspath(path)
        self.count = 0
        self._real = os.replace

    def __enter__(self) -> "WriteCounter":
        def counting(src, dst, *a, **k):
            if os.fspath(dst) == self.path:
                self.count += 1
            return self._real(src, dst, *a, **k)

        os.replace = counting  # core.registry.files writes with os.replace; restored below
        return self

    def __exit__(self, *exc) -> None:
        os.replace = self._real


def timed(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(7)

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "registry.json"
        reg = Registry(path)
        jobs = [make_job(i, rng) for i in range(args.jobs)]
        t0 = time.perf_counter()
        with reg.transaction() as tx:
            for job in jobs:
                tx.put_job(job)
        build = time.perf_counter() - t0
        size = path.stat().st_size
        per_job = size / args.jobs

        pairs = [(j["id"], n) for j in jobs for n in range(len(j["batches"]))]
        rows: list[tuple[str, str]] = []

        def update_200() -> tuple[int, int]:
            chosen = rng.sample(pairs, 200)
            with WriteCounter(path) as counter:
                with reg.transaction() as tx:
                    touched = set()
                    for job_id, n in chosen:
                        job = tx.get_job(job_id)
                        b = job["batches"][n]
                        b["status"] = "completed" if b["status"] != "completed" else "finalizing"
                        b["request_counts"]["completed"] = b["request_counts"]["total"]
                        b["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
                        job["counts"]["succeeded"] += b["request_counts"]["completed"]
                        tx.put_job(job)
                        touched.add(job_id)
            return counter.count, len(touched)

        t_update, (writes, touched) = timed(update_200, args.runs)

        def noop_tx() -> int:
            with WriteCounter(path) as counter:
                with reg.transaction() as tx:
                    job = tx.get_job(jobs[0]["id"])
                    tx.put_job(job)  # unchanged: no write
            return counter.count

        t_noop, noop_writes = timed(noop_tx, args.runs)

        some_id = jobs[args.jobs // 2]["id"]
        some_batch = jobs[args.jobs // 2]["batches"][1]["batch_id"]
        reg.get_job(some_id)  # warm the read cache
        t_get, _ = timed(lambda: reg.get_job(some_id), max(args.runs, 50))
        t_get_cold, _ = timed(lambda: Registry(path).get_job(some_id), args.runs)
        t_get_nocache, _ = timed(lambda: Registry(path, cache_reads=False).get_job(some_id), args.runs)
        t_find, found = timed(lambda: reg.find_job(some_batch), args.runs)
        assert found is not None and found["id"] == some_id
        t_list, listed = timed(reg.list_jobs, args.runs)
        assert len(listed) == args.jobs

        rows = [
            ("jobs stored", f"{args.jobs:,}"),
            ("file size", f"{size / 1e6:.1f} MB ({per_job:,.0f} B/job)"),
            ("build (1 tx, all jobs)", f"{build * 1000:.0f} ms"),
            (f"tx: 200 batches in {touched} jobs", f"{t_update * 1000:.0f} ms, {writes} file write(s)"),
            ("tx: no change", f"{t_noop * 1000:.0f} ms, {noop_writes} file write(s)"),
            ("get_job (cached)", f"{t_get * 1e6:.0f} us"),
            ("get_job (new Registry)", f"{t_get_cold * 1000:.1f} ms"),
            ("get_job (cache_reads=False)", f"{t_get_nocache * 1000:.1f} ms"),
            ("find_job by batch id (cached)", f"{t_find * 1000:.1f} ms"),
            ("list_jobs (cached, copies)", f"{t_list * 1000:.0f} ms"),
            ("backup .bak kept", str(reg.last_write_backed_up)),
        ]
        width = max(len(r[0]) for r in rows)
        print(f"Registry benchmark (median of {args.runs} runs; get_job cached: 50 runs)")
        for name, value in rows:
            print(f"  {name:<{width}}  {value}")
        if writes != 1:
            sys.exit(f"FAIL: the update transaction wrote the file {writes} times, expected 1")
        if noop_writes != 0:
            sys.exit(f"FAIL: the no-change transaction wrote the file {noop_writes} times")


if __name__ == "__main__":
    main()
