"""Benchmark: one monitoring refresh cycle with 10,000 jobs stored and 200 active batches.

Run from the repository root:  .venv/bin/python tests/bench/bench_refresh.py [--jobs N] [--active N]

The provider is a real BatchClient subclass that answers ``retrieve`` from memory, so the
figure is the product's own cost (registry read, job records, one write), not the network's.
Prints the median of a few cycles and the number of registry file writes per cycle (goal: 1,
under 0.5 s).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.client import BatchClient, BatchInfo  # noqa: E402
from core.jobs import JobService  # noqa: E402
from core.models import BatchRecord, Job, SourceRecord  # noqa: E402
from core.registry import Registry  # noqa: E402
from core.settings import load_settings  # noqa: E402


class MemoryProvider(BatchClient):
    """Answers retrieve() with a batch one step further along, without any network."""

    def __init__(self) -> None:
        self.provider = "local"
        self.calls = 0

    def retrieve(self, batch_id: str) -> BatchInfo:
        self.calls += 1
        return BatchInfo(batch_id=batch_id, status="in_progress", input_file_id="file-x",
                         total=1000, completed=self.calls % 1000, failed=0)


def make_job(i: int, *, active: bool) -> Job:
    job_id = f"job_20261101_{i:06d}"
    status = "in_progress" if active else "completed"
    return Job(
        id=job_id, task="investment_activity_classification", provider="local", model="gpt-4.1-mini",
        max_tokens=1000, created_at=f"2026-11-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}+00:00",
        job_dir=f"/data/jobs/{job_id}", output_dir=f"/data/processed/x/{job_id}", n_rows=1000, n_requests=1000,
        sources=[SourceRecord(index=0, name="investor_reports.csv", rows_read=1000, rows_kept=1000)],
        prompts={"system_sha256": "a" * 64, "user_sha256": "b" * 64, "system_path": "prompts/x.txt",
                 "user_path": "prompts/y.txt", "system": "", "user_template": "{text}"},
        estimate={"input_tokens": 400_000, "cost_ceiling": 0.5},
        batches=[BatchRecord(key=f"b{n:03d}", request_file=f"/data/jobs/{job_id}/requests_{n:03d}.jsonl",
                             n_requests=500, first_custom_id="s0-r2", last_custom_id="s0-r501",
                             batch_id=f"batch_{i:06d}_{n}", status=status, total=500, completed=250,
                             output_file_id=None if active else f"file-out-{i:06d}-{n}")
                 for n in range(2)],
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--active", type=int, default=200, help="active batches (2 per active job)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BDASSET_DATA_DIR"] = tmp
        settings = load_settings(root=Path(tmp))
        registry = Registry(settings.registry_path)
        active_jobs = args.active // 2
        with registry.transaction() as tx:
            for i in range(args.jobs):
                tx.put_job(make_job(i, active=i < active_jobs).to_record())
        provider = MemoryProvider()
        service = JobService(settings=settings, registry=registry, client_factory=lambda _: provider)
        writes = 0
        real_replace = os.replace

        def counting_replace(src, dst):  # noqa: ANN001
            nonlocal writes
            if Path(dst) == settings.registry_path:
                writes += 1
            return real_replace(src, dst)

        os.replace = counting_replace  # core.registry.files writes with os.replace
        times, writes_per_cycle = [], []
        for _ in range(args.runs):
            writes = 0
            start = time.perf_counter()
            service.refresh()
            times.append(time.perf_counter() - start)
            writes_per_cycle.append(writes)
        os.replace = real_replace
        size = settings.registry_path.stat().st_size
    print(f"jobs stored: {args.jobs:,}; active batches: {args.active}; registry file {size / 1e6:.1f} MB")
    print(f"refresh cycle (all jobs): median {statistics.median(times) * 1000:.0f} ms "
          f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}); "
          f"registry writes per cycle: {sorted(set(writes_per_cycle))}; provider calls per cycle: {provider.calls // args.runs}")


if __name__ == "__main__":
    main()
