"""Fault injection with real processes and real ``kill -9`` (not a test; pytest does not collect
bench_*.py). Run by hand from the repository root:

    .venv/bin/python tests/bench/bench_faults.py            # 300 / 10 / 20 kills, ~10-15 min
    .venv/bin/python tests/bench/bench_faults.py --quick    # 30 / 3 / 3 kills, ~2-3 min

Three scenarios, each in its own temporary folder (removed at the end unless ``--keep``),
everything on 127.0.0.1, no network. Scenarios 2 and 3 run local jobs with the rules baseline
(``BDASSET_LOCAL_LABELER=rules``, ``--local-labeler``): the embedding labeler answers ~8
paragraphs/s on this machine, which would make every batch minutes long, and the faults under
test (kills, restarts, resumes) do not depend on which labeler answers.

1. **kill -9 during registry writes** (``--registry-kills``, default 300). A child process runs
   :class:`core.registry.Registry` transactions in a loop on a registry of 2,000 realistic jobs
   (~3.3 MB, so a write takes tens of milliseconds). Transaction ``n`` sets the counter job's counter to
   ``n`` and appends ``n`` to its list of applied transactions, creates job ``bench_n<n>`` with
   known content and marks base job ``n % 2000`` with ``touched = n``; once the transaction has
   returned, the child appends ``n`` to a side file and fsyncs it (so the parent knows what was
   acknowledged). The parent kills the child after a random delay, then checks that the file
   parses (orjson, and Python's json with a duplicate-key check), that no acknowledged update is
   lost (counter, created job, base job mark and content), that nothing is duplicated (applied
   list = 1..counter, created jobs = 1..counter), and counts the writer's temporary files
   (``.registry.json.*.tmp``, ``registry.json.bak.tmp``) left by the kill and whether the next
   transaction removed them. At the end a fresh process (``python``, not a fork) does one
   transaction and the temp files still there are the scenario's leftovers. The children are
   forked from this process (core.registry already imported) so that the kills land in the
   transaction loop rather than in interpreter start-up; ``--registry-spawn exec`` starts each
   child as a new interpreter instead (slower, ~0.5 s more per kill).

2. **kill -9 of the local backend mid-batch** (``--backend-kills``, default 10). The product's
   JobService (settings from ``core.settings.load_settings`` with BDASSET_DATA_DIR in a temp
   folder) submits one job of ``--backend-rows`` paragraphs to the embedded backend, started
   detached by ``core.local.daemon.ensure_running`` with a small ``baseline_delay_seconds`` so the
   batch takes seconds. (The only difference from ``core.client.make_client``: the settings
   have no baseline delay, so the client factory handed to JobService calls ensure_running with
   the same configuration plus that delay.) Each run watches the batch at the backend and kills
   the backend's pid (``server.json``) once a random share (0-90%) of its requests is answered,
   i.e. at a random moment while the batch runs (a calibration job, not counted, first shows
   how long an undisturbed batch takes), lets the product restart it (the next client call after
   the failure spawns a new one), waits, collects and checks: every row present exactly once
   with exactly one status, succeeded rows = input rows, each custom_id once in the backend's
   output files.
   Leftovers: ``*.tmp`` / ``*.part`` files under the data folder (the backend state included).

3. **kill -9 of the command line during submit** (``--cli-kills``, default 20). ``python -m core
   submit --task investment_activity_classification --input-file F`` (F: ``--cli-rows``
   generated paragraphs, sent as batches of ``--cli-per-file`` requests) runs in a subprocess
   with a fresh data folder per run and is killed at a random moment between 0 and its normal
   duration (measured once first, with a calibration run that also shows when each step of the
   submission reaches the disk; the durations of later runs that end before their kill update
   that estimate, since other work on the machine changes it). Most of a submit is start-up,
   reading and token counting, which write nothing, so every second run waits for the job
   folder to appear and draws its moment from 0.3 s before that to the end of a normal submit. Recovery as a user would do it:
   ``status --list-jobs``, ``submit --resume JOB`` for a job with unsent batches, ``status
   --reconcile``, ``status --wait`` for unfinished jobs, ``download``. Checks: every recorded
   job ends with all rows succeeded; without a recorded job nothing was sent (the backend's
   batch list has no batch of an unrecorded job); no two batches at the backend carry the same
   job_id + batch_key (unless one is a recorded failed attempt); each custom_id once in the
   results. Leftovers: job folders without ``job.json`` still there after the recovery commands
   (the product tidies them at the next start once older than an hour, which no setting
   shortens, so they are counted, not waited for), ``*.tmp`` / ``*.part`` files, uploads at the
   backend no batch uses (reconcile removes ours once older than an hour). A job folder whose
   ``job.json`` exists but whose job is not in the registry (a kill between the two writes) is
   checked again at the end, once the registry's snapshot grace period has passed, since the
   registry then restores it.

Prints one line per run and a table at the end. Exit code 0 when nothing was lost or duplicated
and every run could be verified; 1 otherwise (leftovers are reported, not failed). A recorded
job that could not be collected (still running after the wait, a command failing) counts as
unverified, not as lost.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import hashlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402

from benchdata import paragraphs  # noqa: E402

TASK1 = "investment_activity_classification"
WRITER_ID = "bench_writer"
BASE_JOBS = 2_000
REGISTRY_NAME = "registry.json"
CLI_TIMEOUT = 180.0  # seconds for one recovery command
UNSENT = frozenset({"pending", "uploaded", "submit_failed"})
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


# ------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    """What one scenario measured."""

    scenario: str
    runs: int = 0
    lost: int = 0
    duplicated: int = 0
    errors: int = 0  # runs that could not be verified (each also explained in notes)
    leftovers: dict[str, int] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = dataclasses.field(default_factory=list)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"    ! {text}", flush=True)


def say(text: str) -> None:
    print(text, flush=True)


def process_gone(pid: int) -> bool:
    """Whether ``pid`` has exited (a zombie not yet reaped by its parent counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        return stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] in (b"Z", b"X")
    except FileNotFoundError:
        return True
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def kill9(pid: int, timeout: float = 10.0) -> bool:
    """SIGKILL ``pid`` and wait until it is gone; False if it had already exited."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not process_gone(pid):
        time.sleep(0.01)
    return True


def temp_files(folder: Path) -> list[Path]:
    """Files named like an interrupted write's (``*.tmp``, ``*.part``) under ``folder``."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*") if p.name.endswith((".tmp", ".part")) and not p.is_dir())


def write_input_csv(path: Path, rows: int, seed: int) -> None:
    """``rows`` distinct report-like paragraphs (no two equal, so no request is deduplicated)."""
    texts = paragraphs(rows, seed=seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["pdf_file_name", "paragraph_text"])
        for i, text in enumerate(texts):
            writer.writerow([f"FfBF_Investor{i % 13}_report_2025.pdf", f"Paragraph {i}. {text}"])


def read_result_rows(files: list[str]) -> tuple[int, Counter, Counter]:
    """(rows, custom_id counts, status counts) of a job's result CSVs."""
    import pandas as pd

    rows, ids, statuses = 0, Counter(), Counter()
    for name in files:
        frame = pd.read_csv(name, dtype=str, keep_default_na=False)
        rows += len(frame)
        ids.update(frame["custom_id"].tolist())
        statuses.update(frame["status"].tolist())
    return rows, ids, statuses


# ------------------------------------------------------------------------------------------
# Scenario 1: kill -9 during registry writes
# ------------------------------------------------------------------------------------------


def base_job_id(i: int) -> str:
    return f"job_20260101_{i // 3600 % 24:02d}{i // 60 % 60:02d}{i % 60:02d}_{i:04x}"


def base_job(i: int) -> dict:
    """A realistic job record (~1.7 KB), like bench_registry's."""
    job_id = base_job_id(i)
    batches = [
        {
            "key": f"b{n:03d}",
            "batch_id": "batch_" + hashlib.md5(f"{i}-{n}".encode()).hexdigest()[:24],
            "input_file_id": "file-" + hashlib.md5(f"in{i}-{n}".encode()).hexdigest()[:24],
            "output_file_id": None,
            "error_file_id": None,
            "status": "in_progress",
            "request_file": f"data/jobs/{job_id}/requests_{n:03d}.jsonl",
            "n_requests": 500,
            "first_custom_id": f"{job_id}_r0",
            "last_custom_id": f"{job_id}_r499",
            "total": 500,
            "completed": (i * 7 + n) % 500,
            "failed": 0,
            "errors": [],
            "timestamps": {"created_at": 1767225600 + i},
            "last_checked_at": "2026-01-01T10:15:00+00:00",
        }
        for n in range(2)
    ]
    return {
        "id": job_id,
        "task": TASK1,
        "provider": "openai",
        "model": "gpt-4.1-mini",
        "created_at": f"2026-01-01T10:{i // 60 % 60:02d}:{i % 60:02d}+00:00",
        "status": "in_progress",
        "input_files": [f"data/processed/biodiversity_related_paragraphs/FfBF_Investor{i % 97}_report_2025.csv"],
        "output_dir": f"data/processed/{TASK1}/{job_id}",
        "prompts": {"system_sha256": hashlib.sha256(f"s{i % 5}".encode()).hexdigest(),
                    "user_sha256": hashlib.sha256(f"u{i % 5}".encode()).hexdigest()},
        "counts": {"rows": 1000, "dropped": i % 13},
        "estimate": {"input_tokens": 400_000 + i, "cost_usd": round(i / 1000, 3)},
        "batches": batches,
    }


def created_job(n: int) -> dict:
    return {"id": f"bench_n{n:07d}", "n": n, "created_at": "2026-01-01T00:00:00+00:00",
            "payload": hashlib.sha256(str(n).encode()).hexdigest()}


def registry_child(path: Path, acks: Path, errors: Path, *, transactions: int = 0, seconds: float = 120.0) -> int:
    """The writer: transactions in a loop until killed (bounded by ``seconds``), each acked."""
    from core.registry import Registry

    try:
        registry = Registry(path)
        base_ids = [base_job_id(i) for i in range(BASE_JOBS)]
        fd = os.open(acks, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        deadline = time.monotonic() + seconds
        done = 0
        while time.monotonic() < deadline and (transactions <= 0 or done < transactions):
            with registry.transaction() as tx:
                writer = tx.get_job(WRITER_ID)
                n = writer["counter"] + 1
                writer["counter"] = n
                writer["applied"].append(n)
                tx.put_job(writer)
                tx.put_job(created_job(n))
                target = tx.get_job(base_ids[n % BASE_JOBS])
                target["touched"] = n
                tx.put_job(target)
            os.write(fd, f"{n}\n".encode())
            os.fsync(fd)
            done += 1
        os.close(fd)
        return 0
    except BaseException:  # noqa: BLE001 - reported to the parent through the errors file
        with open(errors, "a", encoding="utf-8") as handle:
            handle.write(traceback.format_exc() + "\n")
        return 3


def _leftover_names(folder: Path) -> dict[str, int]:
    """The registry writer's temporary files now in ``folder``: name -> size."""
    found = {}
    for entry in os.scandir(folder):
        name = entry.name
        if (name.startswith(f".{REGISTRY_NAME}.") and name.endswith(".tmp")) or name == f"{REGISTRY_NAME}.bak.tmp":
            try:
                found[name] = entry.stat().st_size
            except OSError:
                pass
    return found


def _read_acks(path: Path) -> list[int]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    lines = raw.split(b"\n")
    return [int(x) for x in lines[:-1] if x.strip()]  # the last piece: empty or a torn write


def _check_registry(path: Path, acked: list[int], originals: dict[str, dict], *, duplicate_keys_check: bool
                    ) -> tuple[int, int, list[str]]:
    """(lost, duplicated, problems) of the registry file against the acknowledged updates.
    ``duplicate_keys_check``: also parse with Python's json to find duplicated keys (slower)."""
    problems: list[str] = []
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return len(set(acked)), 0, ["registry.json is missing"]
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return len(set(acked)), 0, [f"registry.json does not parse: {exc}"]
    duplicate_keys = 0

    def pairs(items: list[tuple[str, Any]]) -> dict:
        nonlocal duplicate_keys
        keys = [k for k, _ in items]
        duplicate_keys += len(keys) - len(set(keys))
        return dict(items)

    if duplicate_keys_check:
        json.loads(raw, object_pairs_hook=pairs)
    jobs = data.get("jobs")
    if not isinstance(jobs, dict) or WRITER_ID not in jobs:
        return len(set(acked)), 0, ["the jobs table or the counter job is missing"]
    writer = jobs[WRITER_ID]
    counter, applied = writer["counter"], writer["applied"]
    lost: set[int] = {n for n in acked if n > counter}  # acknowledged, yet not in the file
    duplicated = duplicate_keys + len(applied) - len(set(applied))
    if applied != list(range(1, counter + 1)) and len(applied) == len(set(applied)):
        missing = set(range(1, counter + 1)) - set(applied)
        lost |= missing
        problems.append(f"applied list is not 1..{counter} ({len(missing)} missing)")
    created = {job["n"] for key, job in jobs.items() if key.startswith("bench_n")}
    lost |= {n for n in range(1, counter + 1) if n not in created}
    extra = {n for n in created if n > counter}
    if extra:
        duplicated += len(extra)
        problems.append(f"{len(extra)} created jobs beyond the counter {counter}")
    for n in range(max(1, counter - 5), counter + 1):  # spot-check the content of the newest
        if jobs.get(f"bench_n{n:07d}") not in (None, created_job(n)):
            problems.append(f"bench_n{n:07d} has unexpected content")
            lost.add(n)
    for i, (job_id, original) in enumerate(originals.items()):
        job = jobs.get(job_id)
        if job is None:
            problems.append(f"base job {job_id} is missing")
            lost.add(-1 - i)
            continue
        touched = job.pop("touched", None)
        expected: int | None = counter - ((counter - i) % BASE_JOBS)  # the last n with n % BASE_JOBS == i
        if expected < 1:
            expected = None
        if touched != expected:
            problems.append(f"base job {job_id}: touched={touched}, expected {expected}")
            if expected is not None:
                lost.add(expected)
        if job != original:
            problems.append(f"base job {job_id} content changed")
            lost.add(-1 - i)
    return len(lost), duplicated, problems[:5]


def scenario_registry(out: Outcome, tmp: Path, kills: int, max_delay: float, spawn: str, rng: random.Random) -> Outcome:
    from core.registry import Registry

    folder = tmp / "registry"
    folder.mkdir()
    path = folder / REGISTRY_NAME
    acks, errors = folder / "acks.txt", folder / "child_errors.txt"
    with Registry(path).transaction() as tx:
        for i in range(BASE_JOBS):
            tx.put_job(base_job(i))
        tx.put_job({"id": WRITER_ID, "created_at": "2026-01-01T00:00:00+00:00", "counter": 0, "applied": []})
    originals = {base_job_id(i): base_job(i) for i in range(BASE_JOBS)}
    child_cmd = [sys.executable, str(Path(__file__).resolve()), "--_registry-child", str(path), str(acks), str(errors)]
    if max_delay <= 0:  # calibrate: kills land anywhere from start-up to about the 10th transaction
        timings = []
        for _ in range(3):  # the median of three, since other work on the machine varies it
            t0 = time.monotonic()
            if spawn == "fork":
                sys.stdout.flush()
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    code = 3
                    try:
                        code = registry_child(path, acks, errors, transactions=10)
                    finally:
                        os._exit(code)
                os.waitpid(pid, 0)
            else:
                subprocess.run(child_cmd + ["--transactions", "10"], cwd=ROOT, timeout=120)
            timings.append(time.monotonic() - t0)
        max_delay = min(max(sorted(timings)[1], 0.3), 1.0)
    calibration_acks = len(_read_acks(acks))
    say(f"  registry of {BASE_JOBS:,} jobs, {path.stat().st_size / 1e6:.1f} MB; {kills} kills, "
        f"random delay 0-{max_delay:.2f} s (a writer's start and ~10 transactions), children by {spawn}")
    pending: dict[str, int] = {}  # leftovers not yet seen removed by a later transaction
    left_by_kill = left_bytes = removed = survived = 0
    before_first = 0
    for run in range(1, kills + 1):
        acked_before = len(_read_acks(acks))
        delay = rng.uniform(0.0, max_delay)
        if spawn == "fork":
            sys.stdout.flush()
            sys.stderr.flush()
            seed = rng.getrandbits(32)
            pid = os.fork()
            if pid == 0:  # the child: never returns into the benchmark
                code = 3
                try:
                    random.seed(seed)
                    code = registry_child(path, acks, errors)
                finally:
                    os._exit(code)
            time.sleep(delay)
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        else:
            proc = subprocess.Popen(child_cmd, cwd=ROOT)
            time.sleep(delay)
            proc.kill()
            proc.wait()
            killed = proc.returncode == -signal.SIGKILL
        if not killed:
            out.errors += 1
            out.note(f"run {run}: the child exited by itself before the kill; see {errors}")
        acked = _read_acks(acks)
        new_acks = len(acked) - acked_before
        if new_acks == 0:
            before_first += 1
        if len(acked) != len(set(acked)):
            out.duplicated += len(acked) - len(set(acked))
            out.note(f"run {run}: an acknowledged counter value was acknowledged twice")
        lost, duplicated, problems = _check_registry(path, acked, originals, duplicate_keys_check=run % 10 == 0)
        out.runs += 1
        out.lost += lost
        out.duplicated += duplicated
        if problems:
            out.errors += 1
            out.note(f"run {run}: " + "; ".join(problems))
        now = _leftover_names(folder)
        if new_acks:  # a later transaction ran: earlier leftovers must be gone
            survived += sum(1 for name in pending if name in now)
            removed += sum(1 for name in pending if name not in now)
            pending = {}
        fresh = {name: size for name, size in now.items() if name not in pending}
        left_by_kill += len(fresh)
        left_bytes += sum(fresh.values())
        pending.update(now)
        if run % 25 == 0 or run == kills:
            say(f"  run {run:>4}/{kills}: {len(acked):,} transactions acknowledged so far, lost {out.lost}, "
                f"duplicated {out.duplicated}, temp files left by kills {left_by_kill}")
    # one transaction by a fresh process, then whatever temp files remain are leftovers
    try:
        proc = subprocess.run(child_cmd + ["--transactions", "1"], cwd=ROOT, timeout=120)
        fresh_ok = proc.returncode == 0
    except subprocess.TimeoutExpired:
        fresh_ok = False
    if not fresh_ok:
        out.errors += 1
        out.note(f"the fresh process's transaction failed; see {errors}")
    acked = _read_acks(acks)
    lost, duplicated, problems = _check_registry(path, acked, originals, duplicate_keys_check=True)
    out.lost += lost
    out.duplicated += duplicated
    if problems:
        out.errors += 1
        out.note("after the fresh transaction: " + "; ".join(problems))
    remaining = _leftover_names(folder)
    survived += sum(1 for name in pending if name in remaining)
    removed += sum(1 for name in pending if name not in remaining)
    out.leftovers = {"registry temp files": len(remaining)}
    kept = [p.name for p in folder.iterdir() if p.name.startswith(f"{REGISTRY_NAME}.bak.") and p.name != f"{REGISTRY_NAME}.bak.tmp"]
    out.notes.append(
        f"{len(acked) - calibration_acks:,} transactions acknowledged (calibration excluded); {before_first} kills came before the child's first "
        f"transaction; {left_by_kill} kills left a temp file ({left_bytes / 1e6:.0f} MB): {removed} removed by the "
        f"next transaction, {survived} still there after one; {len(remaining)} left after a fresh process's "
        f"transaction; final file {path.stat().st_size / 1e6:.1f} MB"
        + (f" ({', '.join(sorted(remaining)[:3])})" if remaining else "")
        + (f"; {len(kept)} kept backups ({', '.join(kept[:3])})" if kept else "")
    )
    return out


# ------------------------------------------------------------------------------------------
# Scenario 2: kill -9 of the local backend mid-batch
# ------------------------------------------------------------------------------------------


def scenario_backend(out: Outcome, tmp: Path, kills: int, rows: int, delay: float, labeler: str,
                     rng: random.Random, state_dirs: list[Path]) -> Outcome:
    import openai

    from core.client import BatchClient, local_backend_config
    from core.jobs import JobService
    from core.local.daemon import ensure_running, read_server_info
    from core.settings import load_settings

    folder = tmp / "backend"
    data_dir = folder / "data"
    folder.mkdir()
    settings = load_settings(root=folder, environ={"BDASSET_DATA_DIR": str(data_dir), "BDASSET_PROVIDER": "local",
                                                   "BDASSET_LOCAL_LABELER": labeler}, provider="local")
    config = dataclasses.replace(local_backend_config(settings), baseline_delay_seconds=delay)
    state_dir = Path(config.state_dir)
    state_dirs.append(state_dir)

    def client_factory(provider: str) -> BatchClient:
        endpoint = ensure_running(config)  # spawns the backend when none answers, as make_client does
        sdk = openai.OpenAI(api_key=endpoint.api_key, base_url=endpoint.base_url, max_retries=2)
        return BatchClient(sdk, provider="local")

    service = JobService(settings=settings, client_factory=client_factory)

    def one_job(n: int, kill: bool) -> float:
        csv_path = folder / f"input_{n:02d}.csv"
        write_input_csv(csv_path, rows, seed=1000 + n)
        prep = service.prepare(TASK1, inputs=[csv_path], provider="local")
        job = service.submit(prep, created_by="bench_faults")
        t0 = time.monotonic()
        killed_pid, when, state = None, 0.0, "-"
        # until the kill (or, for the calibration, the end), watch the batch at the backend: the
        # kill comes once a random share of the requests (0-90%) is answered, or after 120 s
        share = rng.uniform(0.0, 0.9) if kill else 2.0
        deadline = t0 + 120.0 if kill else t0 + 600.0
        batch_id = job.batches[0].batch_id
        while True:
            try:
                info = service.client("local").retrieve(batch_id)
                state = f"{info.status} {info.completed}/{info.total}"
                done = info.is_terminal
                reached = info.status == "in_progress" and info.completed >= share * rows
            except Exception as exc:  # noqa: BLE001 - only for the report
                state, done, reached = f"unknown ({type(exc).__name__})", False, False
            if done or reached or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        batch_seconds = time.monotonic() - t0
        if kill:
            when = time.monotonic() - t0
            if done:
                out.note(f"run {n}: the batch had finished before the kill ({state})")
            info = read_server_info(state_dir) or {}
            killed_pid = int(info.get("pid") or 0)
            if not killed_pid or not kill9(killed_pid):
                out.errors += 1
                out.note(f"run {n}: no backend process to kill (server.json: {info})")
        finished = service.wait([job.id], poll_interval=0.2, timeout=240)
        elapsed = time.monotonic() - t0
        if not finished[0].is_finished:
            out.errors += 1
            out.lost += rows
            out.note(f"run {n}: job {job.id} not finished after 240 s ({finished[0].status})")
            return elapsed
        outcome = service.collect(job.id)
        frame = outcome.frame
        ids = Counter(frame["custom_id"].tolist())
        statuses = frame["status"].tolist()
        succeeded = sum(1 for s in statuses if s == "succeeded")
        lost = rows - len(ids) + sum(1 for s in statuses if s != "succeeded")
        dup = sum(c - 1 for c in ids.values())
        no_status = sum(1 for s in statuses if not isinstance(s, str) or not s)
        out_ids: Counter = Counter()
        error_lines = 0
        for path in outcome.raw_files:
            for line in path.read_bytes().splitlines():
                if not line.strip():
                    continue
                if path.name.endswith("_output.jsonl"):
                    out_ids[orjson.loads(line)["custom_id"]] += 1
                else:
                    error_lines += 1
        dup += sum(c - 1 for c in out_ids.values())
        lost += rows - len(out_ids) if len(out_ids) < rows else 0
        lost = max(lost, rows - succeeded)
        new_pid = int((read_server_info(state_dir) or {}).get("pid") or 0)
        if kill:
            out.runs += 1
            out.lost += lost
            out.duplicated += dup
            if no_status:
                out.errors += 1
                out.note(f"run {n}: {no_status} rows without a status")
            if new_pid == killed_pid:
                out.note(f"run {n}: the backend pid did not change after the kill")
        left = temp_files(data_dir)
        label = "calibration" if not kill else f"run {n:>2}/{kills}"
        kill_text = f"killed pid {killed_pid} at {when:.2f} s ({state}), restarted as {new_pid}; " if kill else ""
        say(f"  {label}: {kill_text}{elapsed:.1f} s to finish; rows {len(frame)}/{rows}, succeeded {succeeded}, "
            f"output lines {sum(out_ids.values())}, error lines {error_lines}, lost {lost}, duplicated {dup}, "
            f"temp files {len(left)}")
        return batch_seconds

    window = one_job(0, kill=False)
    if window < 1.0:
        out.note(f"a batch of {rows} rows took only {window:.2f} s: raise --baseline-delay or --backend-rows")
    for n in range(1, kills + 1):
        try:
            one_job(n, kill=True)
        except Exception as exc:  # noqa: BLE001 - a product error is a finding, not a crash of the bench
            out.runs += 1
            out.errors += 1
            out.lost += rows
            out.note(f"run {n}: {type(exc).__name__}: {exc}")
    left = temp_files(data_dir)
    out.leftovers = {"*.tmp/*.part files": len(left)}
    if left:
        out.notes.append("temp files left: " + ", ".join(str(p.relative_to(data_dir)) for p in left[:5]))
    out.notes.append(f"{rows} rows per job, baseline delay {delay} s per request; an undisturbed batch took {window:.1f} s")
    return out


# ------------------------------------------------------------------------------------------
# Scenario 3: kill -9 of the command line during submit
# ------------------------------------------------------------------------------------------


class CliRun:
    """``python -m core`` in a subprocess with a data folder of its own."""

    def __init__(self, data_dir: Path, labeler: str) -> None:
        self.data_dir = data_dir
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "BDASSET_"))}
        env.update(BDASSET_DATA_DIR=str(data_dir), BDASSET_PROVIDER="local", BDASSET_LOCAL_LABELER=labeler,
                   PYTHONUNBUFFERED="1")
        self.env = env
        self.log: list[str] = []  # failed commands, for the report
        self.commands: list[str] = []  # the commands run, shortened

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "core", *args]

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)

    def run(self, *args: str, timeout: float = CLI_TIMEOUT) -> tuple[int, dict]:
        """Run one command with --json; (exit code, parsed JSON or {})."""
        self.commands.append(" ".join(a for a in args[:2] if a.startswith("-") or a.isalpha()))
        try:
            proc = subprocess.run(self.argv(*args, "--json"), cwd=ROOT, env=self.env, capture_output=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self.log.append(f"{' '.join(args)}: timed out after {timeout:.0f} s")
            return -1, {}
        try:
            result = json.loads(proc.stdout.decode("utf-8", "replace") or "{}")
        except ValueError:
            result = {}
        if proc.returncode != 0:
            reason = result.get("error") or proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
            self.log.append(f"{' '.join(args)}: exit {proc.returncode}: {str(reason)[:300]}")
        return proc.returncode, result

    def settings(self):
        from core.settings import load_settings

        return load_settings(environ=self.env)

    def registry_jobs(self) -> dict[str, dict]:
        path = self.data_dir / REGISTRY_NAME
        try:
            return dict(orjson.loads(path.read_bytes()).get("jobs") or {})
        except FileNotFoundError:
            return {}


def _needs_resume(job: dict) -> bool:
    return any(b.get("status") in UNSENT for b in job.get("batches") or [])


def _recover(cli: CliRun) -> list[str]:
    """The user's recovery after a killed submit; returns the ids of the jobs recorded at the end."""
    _, listed = cli.run("status", "--list-jobs")
    for job in listed.get("jobs") or []:
        if _needs_resume(job):
            cli.run("submit", "--resume", job["job_id"])
    cli.run("status", "--reconcile")
    jobs = cli.registry_jobs()
    for job_id, job in jobs.items():  # restored by reconcile with batches still to send
        if _needs_resume(job):
            cli.run("submit", "--resume", job_id)
    jobs = cli.registry_jobs()
    unfinished = [j for j, job in jobs.items() if not all(b.get("status") in TERMINAL for b in job.get("batches") or [])]
    if unfinished:
        cli.run("status", "--batch-id", *unfinished, "--wait", "--poll-interval", "0.2", "--timeout", "150")
    if jobs:
        cli.run("download", "--batch-id", *jobs)
    return list(cli.registry_jobs())


def _verify_cli(cli: CliRun, rows: int) -> dict[str, Any]:
    """Lost, duplicated and leftovers of one run's data folder, from the registry, the result
    files and the backend's own batch and file lists."""
    from core.client import make_client

    jobs = cli.registry_jobs()
    client = make_client(cli.settings(), "local")
    batches = list(client.iter_batches())
    files = list(client.iter_files(purpose="batch"))
    result: dict[str, Any] = {"lost": 0, "duplicated": 0, "problems": [], "unverified": 0, "jobs": len(jobs),
                              "batches": len(batches)}
    for job_id, job in jobs.items():
        counts = job.get("result_counts") or {}
        output_files = job.get("output_files") or []
        if not output_files:  # not lost (it is recorded), but its rows could not be checked
            states = Counter(b.get("status") for b in job.get("batches") or [])
            result["unverified"] += 1
            result["problems"].append(f"job {job_id} could not be collected (batches: {dict(states)})")
            continue
        n, ids, statuses = read_result_rows(output_files)
        dup = sum(c - 1 for c in ids.values())
        result["duplicated"] += dup
        succeeded = statuses.get("succeeded", 0)
        result["lost"] += max(rows - len(ids), 0) + (len(ids) - min(succeeded, len(ids)))
        if n != rows or succeeded != rows or counts.get("succeeded") != rows:
            result["problems"].append(f"job {job_id}: {n} result rows, {dict(statuses)}, registry counts {counts}")
    # what the backend holds: a batch of a job the registry does not know was paid for and lost
    groups: dict[tuple[str, str], list] = {}
    for info in batches:
        job_id, key = info.metadata.get("job_id"), info.metadata.get("batch_key")
        if job_id not in jobs:
            result["lost"] += info.total
            result["problems"].append(f"batch {info.batch_id} of unrecorded job {job_id} at the backend")
            continue
        groups.setdefault((job_id, key), []).append(info)
    for (job_id, key), infos in groups.items():
        if len(infos) < 2:
            continue
        batch = next((b for b in jobs[job_id].get("batches") or [] if b.get("key") == key), {})
        attempts = {a.get("batch_id") for a in batch.get("attempts") or []}
        extra = [i for i in infos if i.batch_id != batch.get("batch_id") and i.batch_id not in attempts]
        result["duplicated"] += sum(i.total for i in extra)
        if extra:
            result["problems"].append(f"{job_id}/{key} sent {len(infos)} times: {[i.batch_id for i in infos]}")
    used_inputs = {i.input_file_id for i in batches}
    result["orphan_uploads"] = sum(1 for f in files if f.file_id not in used_inputs)
    jobs_dir = cli.data_dir / "jobs"
    folders = [p for p in jobs_dir.iterdir() if p.is_dir()] if jobs_dir.is_dir() else []
    result["half_written"] = [p.name for p in folders if not (p / "job.json").exists()]
    result["snapshot_only"] = [p.name for p in folders if (p / "job.json").exists() and p.name not in jobs]
    result["temp_files"] = len(temp_files(cli.data_dir))
    return result


def scenario_cli(out: Outcome, tmp: Path, kills: int, rows: int, per_file: int, labeler: str, rng: random.Random,
                 state_dirs: list[Path]) -> Outcome:
    from core.local.daemon import stop_running

    folder = tmp / "cli"
    folder.mkdir()
    csv_path = folder / "paragraphs.csv"
    write_input_csv(csv_path, rows, seed=7)
    submit = ("submit", "--task", TASK1, "--input-file", str(csv_path), "--max-requests-per-file", str(per_file))
    leftovers = out.leftovers  # filled as runs end, so an interrupted run still reports them
    for name in ("half-written job folders", "*.tmp/*.part files", "unused uploads at the backend"):
        leftovers[name] = 0
    deferred: list[tuple[CliRun, str, float]] = []
    outcomes = Counter()

    def finish(cli: CliRun) -> None:
        try:
            stop_running(cli.settings().local_state_dir)
        except Exception as exc:  # noqa: BLE001
            out.note(f"could not stop the backend of {cli.data_dir}: {exc}")

    # calibration: one undisturbed submit, timed, then recovered and verified like the others
    cli = CliRun(folder / "run_00" / "data", labeler)
    state_dirs.append(cli.data_dir / "local_backend")
    t0 = time.monotonic()
    proc = cli.start(*submit)
    phases: dict[str, float] = {}  # when each step of the submission became visible on disk
    jobs_dir = cli.data_dir / "jobs"
    while proc.poll() is None and time.monotonic() - t0 < 300:
        now = time.monotonic() - t0
        folders = [p for p in jobs_dir.iterdir()] if jobs_dir.is_dir() else []
        if folders:
            phases.setdefault("job folder", now)
            if any((p / "job.json").exists() for p in folders):
                phases.setdefault("job.json", now)
        try:
            recorded = list(cli.registry_jobs().values())
        except orjson.JSONDecodeError:
            recorded = []
        if recorded:
            phases.setdefault("recorded", now)
            sent = sum(1 for b in recorded[0].get("batches") or [] if b.get("batch_id"))
            if sent:
                phases.setdefault("1st batch sent", now)
        time.sleep(0.05)
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    duration = time.monotonic() - t0
    phases["exit"] = duration
    timeline = ", ".join(f"{name} {at:.1f} s" for name, at in phases.items())
    # the moments to kill at: durations of undisturbed submits seen so far (their median), and
    # how long a submit runs after creating its job folder
    durations = [duration]
    send_window = duration - phases.get("job folder", 0.0)
    _recover(cli)
    check = _verify_cli(cli, rows)
    finish(cli)
    say(f"  calibration: submit exit {proc.returncode}; {timeline}; {check['jobs']} job, "
        f"{check['batches']} batches; lost {check['lost']}, duplicated {check['duplicated']}")
    if proc.returncode != 0 or check["lost"] or check["duplicated"] or check["jobs"] != 1:
        out.errors += 1
        out.note(f"calibration run failed: {check['problems'][:3]} {cli.log[:3]}")

    for run in range(1, kills + 1):
        cli = CliRun(folder / f"run_{run:02d}" / "data", labeler)
        state_dirs.append(cli.data_dir / "local_backend")
        t_run = time.monotonic()
        proc = cli.start(*submit)
        t_start = time.monotonic()
        if run % 2:  # odd runs: anywhere in the submit's normal duration
            target = t_start + rng.uniform(0.0, statistics.median(durations))
        else:
            # even runs: from just before its first write to its end. Most of a submit is
            # start-up, reading and counting, which write nothing, and how long that takes varies
            # with the machine's load: so wait for the job folder, then draw the moment
            jobs_dir = cli.data_dir / "jobs"
            while proc.poll() is None and time.monotonic() - t_start < 120 and not (
                    jobs_dir.is_dir() and any(True for _ in os.scandir(jobs_dir))):
                time.sleep(0.01)
            target = time.monotonic() + rng.uniform(-0.3, send_window)
        try:
            proc.wait(timeout=max(0.0, target - time.monotonic()))
            killed = False
            durations.append(time.monotonic() - t_start)  # finished undisturbed: a duration seen
        except subprocess.TimeoutExpired:
            killed = kill9(proc.pid)
            proc.wait()
        delay = time.monotonic() - t_start
        try:
            at_kill = list(cli.registry_jobs().values())
        except orjson.JSONDecodeError as exc:
            at_kill = []
            out.note(f"run {run}: the registry did not parse right after the kill: {exc}")
        sent_text = "; ".join(
            f"{sum(1 for b in j.get('batches') or [] if b.get('batch_id'))}/{len(j.get('batches') or [])} batches sent"
            for j in at_kill) or "no job in the registry"
        try:
            _recover(cli)
            check = _verify_cli(cli, rows)
        except Exception as exc:  # noqa: BLE001 - an error while recovering is a finding
            out.runs += 1
            out.errors += 1
            out.note(f"run {run}: {type(exc).__name__}: {exc}; commands: {cli.log[:3]}")
            finish(cli)
            continue
        out.runs += 1
        out.lost += check["lost"]
        out.duplicated += check["duplicated"]
        out.errors += 1 if check["unverified"] else 0
        leftovers["half-written job folders"] += len(check["half_written"])
        leftovers["*.tmp/*.part files"] += check["temp_files"]
        leftovers["unused uploads at the backend"] += check["orphan_uploads"]
        for job_id in check["snapshot_only"]:
            deferred.append((cli, job_id, time.monotonic()))
        kind = ("finished before the kill" if not killed else
                "nothing recorded" if not check["jobs"] else "job recorded")
        outcomes[kind] += 1
        say(f"  run {run:>2}/{kills}: {'kill' if killed else 'exit'} at {delay:.2f} s ({kind}: {sent_text}); recovery: "
            f"{', '.join(cli.commands)}; {check['jobs']} job(s), {check['batches']} "
            f"batches at the backend; lost {check['lost']}, duplicated {check['duplicated']}; half-written folders "
            f"{len(check['half_written'])}, temp files {check['temp_files']}, unused uploads {check['orphan_uploads']}"
            + (f", snapshot only {len(check['snapshot_only'])}" if check["snapshot_only"] else "")
            + f" ({time.monotonic() - t_run:.0f} s)")
        for problem in check["problems"][:3]:
            out.note(f"run {run}: {problem}")
        if check["problems"] and cli.log:
            out.note(f"run {run} commands: {cli.log[:3]}")
        if not check["snapshot_only"]:
            finish(cli)

    # jobs whose snapshot was written but not recorded: the registry restores them once the
    # snapshot is older than its grace period; then the user recovers as before
    if deferred:
        from core.registry import SNAPSHOT_GRACE_SECONDS

        for cli, job_id, seen in deferred:
            wait = SNAPSHOT_GRACE_SECONDS + 5 - (time.monotonic() - seen)
            if wait > 0:
                say(f"  waiting {wait:.0f} s for the registry's snapshot grace period ({job_id})")
                time.sleep(wait)
            ids = _recover(cli)
            check = _verify_cli(cli, rows)
            if job_id not in ids:
                out.lost += rows
                out.note(f"{job_id}: its snapshot was never restored into the registry")
            out.lost += check["lost"]
            out.duplicated += check["duplicated"]
            out.errors += 1 if check["unverified"] else 0
            say(f"  {job_id} (snapshot only): restored {job_id in ids}; lost {check['lost']}, "
                f"duplicated {check['duplicated']}")
            finish(cli)
    out.notes.append(
        f"{rows} rows, batches of {per_file}; an undisturbed submit: {timeline}; kills: "
        + ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items()))
        + (f"; {len(deferred)} job(s) with a snapshot but no registry record at first" if deferred else "")
        + ". Half-written job folders are tidied by the product only when older than an hour (not configurable)"
        "; unused uploads are removed by reconcile only when older than an hour."
    )
    return out


# ------------------------------------------------------------------------------------------
# Main
# ------------------------------------------------------------------------------------------


def print_table(outcomes: list[Outcome]) -> None:
    headers = ("scenario", "runs", "lost", "duplicated", "unverified", "leftovers", "time")
    rows = []
    for o in outcomes:
        left = "; ".join(f"{k} {v}" for k, v in o.leftovers.items()) or "-"
        rows.append((o.scenario, str(o.runs), str(o.lost), str(o.duplicated), str(o.errors), left, f"{o.seconds:.0f} s"))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--registry-kills", type=int, default=300)
    parser.add_argument("--backend-kills", type=int, default=10)
    parser.add_argument("--cli-kills", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="30 / 3 / 3 kills")
    parser.add_argument("--registry-max-delay", type=float, default=0.0,
                        help="seconds; each registry writer is killed after a uniform random delay up to this "
                             "(default: the time a writer takes to start and do 10 transactions, measured "
                             "first, between 0.3 and 1 s)")
    parser.add_argument("--registry-spawn", choices=("fork", "exec"), default="fork" if hasattr(os, "fork") else "exec")
    parser.add_argument("--backend-rows", type=int, default=300)
    parser.add_argument("--baseline-delay", type=float, default=0.1, help="seconds per request in the local backend")
    parser.add_argument("--cli-rows", type=int, default=2_000)
    parser.add_argument("--cli-per-file", type=int, default=250, help="requests per batch (several batches per job)")
    parser.add_argument("--local-labeler", choices=("rules", "e5"), default="rules",
                        help="BDASSET_LOCAL_LABELER for scenarios 2 and 3 (the embedding labeler answers ~8 "
                             "paragraphs/s here, which makes every batch far slower; the faults do not depend on it)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders")
    parser.add_argument("--_registry-child", nargs=3, metavar=("REGISTRY", "ACKS", "ERRORS"), help=argparse.SUPPRESS)
    parser.add_argument("--transactions", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._registry_child:
        registry, acks, errors = map(Path, args._registry_child)
        return registry_child(registry, acks, errors, transactions=args.transactions)
    if args.quick:
        args.registry_kills, args.backend_kills, args.cli_kills = 30, 3, 3
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    rng = random.Random(seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench_faults_"))
    say(f"fault injection: {args.registry_kills} registry / {args.backend_kills} backend / {args.cli_kills} "
        f"command-line kills; seed {seed}; temp folder {tmp}")
    outcomes: list[Outcome] = []
    state_dirs: list[Path] = []
    started = time.monotonic()
    scenarios: list[tuple[int, str, Callable[[Outcome], Outcome]]] = [
        (args.registry_kills, "kill -9 during registry writes",
         lambda out: scenario_registry(out, tmp, args.registry_kills, args.registry_max_delay, args.registry_spawn, rng)),
        (args.backend_kills, "kill -9 of the local backend mid-batch",
         lambda out: scenario_backend(out, tmp, args.backend_kills, args.backend_rows, args.baseline_delay,
                                      args.local_labeler, rng, state_dirs)),
        (args.cli_kills, "kill -9 of the command line during submit",
         lambda out: scenario_cli(out, tmp, args.cli_kills, args.cli_rows, args.cli_per_file, args.local_labeler,
                                  rng, state_dirs)),
    ]
    failed = False
    try:
        for count, name, run in scenarios:
            if count <= 0:
                continue
            say("")
            outcome = Outcome(name)
            outcomes.append(outcome)
            t0 = time.monotonic()
            try:
                run(outcome)
            except Exception as exc:  # noqa: BLE001 - report what ran, then fail
                traceback.print_exc()
                outcome.scenario += " (aborted)"
                outcome.errors += 1
                outcome.notes.append(f"aborted: {type(exc).__name__}: {exc}")
            finally:
                outcome.seconds = time.monotonic() - t0
            say(f"{outcome.scenario}: {outcome.runs} runs, lost {outcome.lost}, duplicated {outcome.duplicated}, "
                f"unverified {outcome.errors}, {outcome.seconds:.0f} s")
    except KeyboardInterrupt:
        failed = True
        if outcomes:
            outcomes[-1].scenario += " (interrupted)"
        say("interrupted")
    finally:
        if state_dirs:
            from core.local.daemon import stop_running

            for state_dir in state_dirs:
                try:
                    stop_running(state_dir, timeout=10)
                except Exception as exc:  # noqa: BLE001
                    say(f"could not stop the backend of {state_dir}: {exc}")
        if args.keep:
            say(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    say("")
    say(f"seed {seed}; total {time.monotonic() - started:.0f} s")
    print_table(outcomes)
    for o in outcomes:
        for text in o.notes:
            say(f"  {o.scenario}: {text}")
    bad = failed or any(o.lost or o.duplicated or o.errors for o in outcomes)
    say("RESULT: " + ("FAIL (something was lost, duplicated or could not be verified)" if bad
                      else "OK: nothing lost, nothing duplicated"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
