"""Benchmark of the local backend forwarding a batch to a chat server (not a test; pytest
does not collect bench_*.py).

Run from the repository root:
    .venv/bin/python tests/bench/bench_forwarding.py [--requests N] [--concurrency C] [--latency S] [--runs R]

A loopback fake chat server (tests/fakes.py) answers each request after S seconds (default
0.05). First the fake server alone is measured with C client threads on keep-alive
connections (its ceiling on this machine). Then a LocalBackend(concurrency=C) gets a batch of
N (default 3,000) task-1 requests through the real openai SDK (files.create +
batches.create) and the time from create until the batch is completed is taken.
Goal: >= 80% of C / S requests/s (512/s for 32 and 50 ms).
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
for p in (ROOT, ROOT / "tests", ROOT / "tests" / "bench"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from openai import OpenAI  # noqa: E402

from benchdata import paragraphs, print_table  # noqa: E402
from core.local import BackendConfig, LocalBackend  # noqa: E402
from core.prompts import load_prompts  # noqa: E402
from core.requests import iter_request_lines, make_custom_id  # noqa: E402
from core.tasks import INVESTMENT_ACTIVITY  # noqa: E402
from fakes import FakeChatServer  # noqa: E402


def request_lines(n: int) -> tuple[bytes, list[bytes]]:
    task = INVESTMENT_ACTIVITY
    texts = paragraphs(n, seed=21)
    texts = [t + (" SCORE1" if i % 3 == 0 else "") for i, t in enumerate(texts)]
    lines = list(
        iter_request_lines(
            [make_custom_id(0, i + 2) for i in range(n)],
            texts,
            task=task,
            prompts=load_prompts(task.name),
            model="gpt-4.1-mini",
            max_tokens=1000,
        )
    )
    return b"\n".join(lines) + b"\n", lines


def _serve(latency: float, conn, stop) -> None:  # child process
    with FakeChatServer(latency=latency) as server:
        conn.send(server.base_url)
        stop.wait(3600)
        conn.send(len(server.requests))


class ServerProcess:
    """The fake chat server in its own process (as a real chat server would be), so that its
    request handling does not share this process's GIL with the backend under test."""

    def __init__(self, latency: float) -> None:
        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._stop = ctx.Event()
        self._proc = ctx.Process(target=_serve, args=(latency, child, self._stop), daemon=True)

    def __enter__(self) -> "ServerProcess":
        self._proc.start()
        if not self._conn.poll(30):
            sys.exit("FAIL: the fake chat server did not start")
        self.base_url = self._conn.recv()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.answered = self._conn.recv() if self._conn.poll(10) else -1
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()


def server_ceiling(base_url: str, bodies: list[bytes], concurrency: int) -> float:
    """Requests/s of the fake server alone: `concurrency` threads, each a plain keep-alive
    http.client connection (far lighter than an SDK client)."""
    parsed = urlsplit(base_url)
    path = parsed.path + "/chat/completions"
    index = iter(range(len(bodies)))
    lock = threading.Lock()
    errors: list[str] = []

    def worker() -> None:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
        try:
            while True:
                with lock:
                    i = next(index, None)
                if i is None:
                    return
                try:
                    conn.request("POST", path, body=bodies[i], headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    r.read()
                except (OSError, http.client.HTTPException) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    return
                if r.status != 200:
                    errors.append(str(r.status))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    elapsed = time.perf_counter() - t0
    if errors or any(t.is_alive() for t in threads):
        sys.exit(f"FAIL: fake server run had errors {errors[:3]} or hung")
    return len(bodies) / elapsed


def forward_once(server: ServerProcess, data: bytes, n: int, concurrency: int, timeout: float) -> tuple[float, dict]:
    import orjson

    with tempfile.TemporaryDirectory() as tmp:
        config = BackendConfig(state_dir=Path(tmp) / "state", chat_base_url=server.base_url, concurrency=concurrency)
        with LocalBackend(config) as backend:
            client = OpenAI(api_key=backend.api_key, base_url=backend.base_url, max_retries=0, timeout=30)
            uploaded = client.files.create(file=("requests.jsonl", data), purpose="batch")
            t0 = time.perf_counter()
            batch = client.batches.create(
                input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
            )
            deadline = t0 + timeout
            while batch.status not in ("completed", "failed", "expired", "cancelled"):
                if time.perf_counter() > deadline:
                    client.batches.cancel(batch.id)
                    sys.exit(f"FAIL: batch not finished after {timeout:.0f} s ({batch.request_counts})")
                time.sleep(0.02)
                batch = client.batches.retrieve(batch.id)
            elapsed = time.perf_counter() - t0
            if batch.status != "completed" or batch.request_counts.completed != n:
                sys.exit(f"FAIL: batch {batch.status}, counts {batch.request_counts}")
            out = client.files.content(batch.output_file_id).content
            ids = {orjson.loads(line)["custom_id"] for line in out.splitlines() if line.strip()}
            if len(ids) != n:
                sys.exit(f"FAIL: {len(ids)} distinct custom_ids in the output, expected {n}")
            return elapsed, {"status": batch.status, "completed": batch.request_counts.completed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0, help="per batch, seconds")
    args = parser.parse_args()

    data, lines = request_lines(args.requests)
    import orjson

    bodies = [orjson.dumps(orjson.loads(line)["body"]) for line in lines]
    ideal = args.concurrency / args.latency
    goal = 0.8 * ideal

    with ServerProcess(args.latency) as server:
        ceilings = [server_ceiling(server.base_url, bodies, args.concurrency) for _ in range(args.runs)]
        ceiling = statistics.median(ceilings)
        times = []
        for _ in range(args.runs):
            elapsed, _ = forward_once(server, data, args.requests, args.concurrency, args.timeout)
            times.append(elapsed)
        t = statistics.median(times)
    answered = server.answered

    rate = args.requests / t
    print_table(
        f"Forwarding benchmark: {args.requests:,} requests, concurrency {args.concurrency}, "
        f"server latency {args.latency * 1000:.0f} ms (median of {args.runs} runs)",
        [
            ("ideal (concurrency / latency)", f"{ideal:,.0f} req/s"),
            (f"fake server alone (own process), {args.concurrency} keep-alive clients", f"{ceiling:,.0f} req/s  ({ceiling / ideal:.0%} of ideal)"),
            ("local backend: create -> completed", f"{t:.2f} s  = {rate:,.0f} req/s  ({rate / ideal:.0%} of ideal)"),
            ("goal >= 80% of ideal", f"{goal:,.0f} req/s  {'OK' if rate >= goal else 'MISSED'}"),
            ("backend / fake-server ceiling", f"{rate / ceiling:.0%}"),
            ("chat requests the server saw", f"{answered:,} (= {args.runs} x ceiling + {args.runs} x batch)"),
        ],
    )


if __name__ == "__main__":
    main()
