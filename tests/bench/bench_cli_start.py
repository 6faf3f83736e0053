"""Benchmark of the command line's start (not a test; pytest does not collect bench_*.py).

Run from the repository root:  .venv/bin/python tests/bench/bench_cli_start.py [--jobs N] [--runs R]

Builds a data folder whose registry holds N (default 200) finished jobs, then times, as fresh
processes (median of R rounds, default 5; each round runs every command once, so a busy moment
of a shared machine weighs on all of them alike), what a researcher types most:
  python -c pass                          the interpreter alone (the floor)
  python -m core --help
  python -m core status --list-jobs       the N jobs
  python -m core status --batch-id J      one finished job (nothing to ask the provider)
and prints the heaviest imports of each command (``-X importtime``, cumulative, top level) and
whether pandas, pyarrow, openpyxl, openai, scikit-learn or pydantic were imported at all.
Goal (issue 12): <= 0.3 s for help, list and one job's status.

Compiled bytecode is cached (in a temporary folder, after one warm-up run) as it is for an
installed package, even when PYTHONDONTWRITEBYTECODE is set; ``--no-bytecode-cache`` measures
the first run after an edit instead (every module compiled from source). ``--instructions`` also
counts the instructions each command executes (valgrind's callgrind, if installed): a figure a
busy shared machine does not move, unlike wall and CPU time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
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

HEAVY = ("pandas", "pyarrow", "openpyxl", "openai", "sklearn", "scipy", "numpy", "streamlit", "pydantic")
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


def wall(commands: list[list[str]], env: dict[str, str], runs: int) -> list[tuple[float, float]]:
    """(median wall seconds, median CPU seconds) of each command over ``runs`` rounds (each
    round runs every command once). CPU time (user + system, from wait4) moves less than wall
    time when other work shares the machine."""
    times: list[list[tuple[float, float]]] = [[] for _ in commands]
    for _ in range(runs):
        for argv, seen in zip(commands, times):
            start = time.perf_counter()
            proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            assert proc.stderr is not None
            stderr = proc.stderr.read()
            _, status, usage = os.wait4(proc.pid, 0)
            seen.append((time.perf_counter() - start, usage.ru_utime + usage.ru_stime))
            proc.stderr.close()
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0:
                raise SystemExit(f"{' '.join(argv)} failed: {stderr.decode()[-500:]}")
    return [(statistics.median(w for w, _ in seen), statistics.median(c for _, c in seen)) for seen in times]


def instructions(argv: list[str], env: dict[str, str]) -> int | None:
    """Instructions one run executes (callgrind's "Collected"), or None without valgrind."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return None
    done = subprocess.run([valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    return int(found.group(1)) if found and done.returncode == 0 else None


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
    parser.add_argument("--instructions", action="store_true",
                        help="also count each command's instructions under valgrind (about 10 s per command)")
    parser.add_argument("--no-bytecode-cache", dest="cache", action="store_false",
                        help="compile every module from source at each run (as right after an edit)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        job_id = make_registry(data_dir, args.jobs)
        env = {**os.environ, "BDASSET_DATA_DIR": str(data_dir), "BDASSET_PROVIDER": "local"}
        env.pop("OPENAI_API_KEY", None)
        if args.cache:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        else:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            env.pop("PYTHONPYCACHEPREFIX", None)
        python = sys.executable
        commands = [
            ("python -c pass", [python, "-c", "pass"], False),
            ("python -m core --help", [python, "-m", "core", "--help"], True),
            (f"python -m core status --list-jobs ({args.jobs} jobs)", [python, "-m", "core", "status", "--list-jobs"], True),
            ("python -m core status --batch-id J (finished)", [python, "-m", "core", "status", "--batch-id", job_id], True),
        ]
        if args.cache:
            wall([argv for _, argv, _ in commands], env, 1)  # warm-up: compile and cache the bytecode
        rows = []
        seconds = wall([argv for _, argv, _ in commands], env, args.runs)
        floor, floor_cpu = seconds[0]
        for (label, _, goal), (took, cpu) in zip(commands, seconds):
            verdict = ("  OK" if took <= GOAL_SECONDS else "  MISSED") if goal else ""
            over = f" (interpreter + {took - floor:.3f} s)" if goal else ""
            cpu_over = f" (+ {cpu - floor_cpu:.3f} s)" if goal else ""
            rows.append((label, f"{took:.3f} s{over}{verdict}; CPU {cpu:.3f} s{cpu_over}"))
        if args.instructions:
            counts = [instructions(argv, env) for _, argv, _ in commands]
            if counts[0] is None:
                rows.append(("instructions", "valgrind not found (or failed)"))
            else:
                for (label, _, _), n in zip(commands, counts):
                    rows.append((f"  instructions: {label.split(' (')[0].removeprefix('python ')}",
                                 f"{n / 1e6:,.0f} M ({n / counts[0]:.1f}x the interpreter's)" if n else "failed"))
        for label, argv, _ in commands[1:]:
            heaviest, heavy = import_report(argv, env)
            rows.append((f"  imports of {label.split(' (')[0].removeprefix('python -m core ')}", heaviest))
            rows.append(("    heavy libraries imported", heavy))
    cache = "bytecode cached" if args.cache else "no bytecode cache"
    print_table(f"Command-line start (median of {args.runs} rounds, {cache}; goal <= {GOAL_SECONDS} s for help, list "
                "and one job)", rows)


if __name__ == "__main__":
    main()
