"""Benchmark of the command line's start (not a test; pytest does not collect bench_*.py).

Run from the repository root:  .venv/bin/python tests/bench/bench_cli_start.py [--jobs N] [--runs R]

Builds a data folder whose registry holds N (default 200) finished jobs, then times, as fresh
processes (median of R runs, default 5), what a researcher types most:
  python -c pass                          the interpreter alone (the floor)
  python -m core --help
  python -m core status --list-jobs       the N jobs
  python -m core status --batch-id J      one finished job (nothing to ask the provider)
and prints the heaviest imports of each command (``-X importtime``, cumulative, top level) and
whether pandas, pyarrow, openpyxl, openai or scikit-learn were imported at all.
Goal (issue 12): <= 0.3 s for help and list.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT, ROOT / "tests" / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from benchdata import print_table  # noqa: E402
from core.models import BatchRecord, Job, SourceRecord  # noqa: E402
from core.registry import Registry  # noqa: E402

HEAVY = ("pandas", "pyarrow", "openpyxl", "openai", "sklearn", "scipy", "numpy", "streamlit")
GOAL_SECONDS = 0.3


def make_registry(data_dir: Path, n: int) -> str:
    """A registry of ``n`` finished, collected task-1 jobs; returns the newest job's id."""
    jobs = []
    for i in range(n):
        job_id = f"job_20261201_{i // 3600:02d}{i // 60 % 60:02d}{i % 60:02d}_{i % 65536:04x}"
        batches = [BatchRecord(key=f"b{k:03d}", request_file=f"/x/requests_{k:03d}.jsonl", n_requests=5_000,
                               first_custom_id="s0-r2", last_custom_id="s0-r5001", status="completed",
                               batch_id=f"batch_{i:06d}{k:03d}", total=5_000, completed=4_990, failed=10,
                               output_file_id=f"file-{i:06d}{k:03d}") for k in range(4)]
        jobs.append(Job(
            id=job_id, task="investment_activity_classification", provider="local", model="local-baseline-rules-v1",
            max_tokens=1000, created_at=f"2026-12-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}+00:00",
            job_dir=str(data_dir / "jobs" / job_id),
            # half of them named (older checkouts, measured for comparison, have no names)
            **({"name": f"Run {i}" if i % 2 else None} if "name" in Job.model_fields else {}),
            output_dir=str(data_dir / "processed" / job_id), n_rows=20_000, n_requests=20_000,
            sources=[SourceRecord(index=0, name=f"reports_{i}.csv", rows_read=20_000, rows_kept=20_000)],
            prompts={}, estimate={"input_tokens": 9_000_000}, batches=batches,
            collected_at="2026-12-02T00:00:00+00:00",
            result_counts={"succeeded": 19_960, "failed": 40},
        ))
    with Registry(data_dir / "registry.json").transaction() as tx:
        for job in jobs:
            tx.put_job(job.to_record())
    return jobs[-1].id


def wall(argv: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()[-500:]}")
    return statistics.median(times)


def import_report(argv: list[str], env: dict[str, str], top: int = 5) -> tuple[str, str]:
    """(heaviest top-level imports, heavy libraries imported) of one run."""
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    rows: list[tuple[int, str]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        if not name.startswith("  "):  # top level: what the command itself imported
            rows.append((int(cumulative), name.strip()))
    names = {name.strip() for line in done.stderr.splitlines() if line.startswith("import time:")
             for name in [line.rsplit("|", 1)[-1]]}
    heaviest = ", ".join(f"{name} {us / 1e3:.0f} ms" for us, name in sorted(rows, reverse=True)[:top])
    heavy = ", ".join(h for h in HEAVY if h in names) or "none"
    return heaviest, heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs in the registry")
    parser.add_argument("--runs", type=int, default=5, help="runs per command (the median is shown)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        job_id = make_registry(data_dir, args.jobs)
        env = {**os.environ, "BDASSET_DATA_DIR": str(data_dir), "BDASSET_PROVIDER": "local"}
        env.pop("OPENAI_API_KEY", None)
        python = sys.executable
        commands = [
            ("python -c pass", [python, "-c", "pass"], False),
            ("python -m core --help", [python, "-m", "core", "--help"], True),
            (f"python -m core status --list-jobs ({args.jobs} jobs)", [python, "-m", "core", "status", "--list-jobs"], True),
            ("python -m core status --batch-id J (finished)", [python, "-m", "core", "status", "--batch-id", job_id], False),
        ]
        rows = []
        for label, argv, goal in commands:
            seconds = wall(argv, env, args.runs)
            verdict = ("  OK" if seconds <= GOAL_SECONDS else "  MISSED") if goal else ""
            rows.append((label, f"{seconds:.3f} s{verdict}"))
        for label, argv, _ in commands[1:]:
            heaviest, heavy = import_report(argv, env)
            rows.append((f"  imports of {label.split(' (')[0].removeprefix('python -m core ')}", heaviest))
            rows.append(("    heavy libraries imported", heavy))
    print_table(f"Command-line start (median of {args.runs} runs; goal <= {GOAL_SECONDS} s for help and list)", rows)


if __name__ == "__main__":
    main()
