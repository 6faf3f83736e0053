"""Tests of core.registry on real files: no mocks, separate processes for concurrency."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable without a conftest or installed package
    sys.path.insert(0, str(ROOT))

from core.errors import RegistryError  # noqa: E402
from core.registry import Registry  # noqa: E402


def job(job_id: str, created_at: str = "2026-11-25T10:15:00+00:00", batch_ids=(None,), **extra) -> dict:
    return {
        "id": job_id,
        "created_at": created_at,
        "task": "investment_activity_classification",
        "batches": [{"batch_id": b, "key": f"{job_id}_b{n}", "status": "validating"}
                    for n, b in enumerate(batch_ids)],
        **extra,
    }


class WriteCounter:
    """Counts os.replace calls that land on the registry file (= file writes)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
        self.count = 0
        real = os.replace
        target = os.fspath(path)

        def counting(src, dst, *a, **k):
            if os.fspath(dst) == target:
                self.count += 1
            return real(src, dst, *a, **k)

        monkeypatch.setattr(os, "replace", counting)  # core.registry.files writes with os.replace


@pytest.fixture
def reg_path(tmp_path: Path) -> Path:
    return tmp_path / "registry" / "jobs.json"  # folder does not exist yet


# ---------------------------------------------------------------------------------------------
# Basic behaviour
# ---------------------------------------------------------------------------------------------


def test_missing_file_without_evidence_of_jobs_is_an_empty_registry(reg_path: Path) -> None:
    # no backup, no job folder: a new registry (see test_registry_recovery.py for the rest)
    reg = Registry(reg_path)
    assert reg.path == reg_path
    assert reg.get_job("job_x") is None
    assert reg.list_jobs() == []
    assert reg.find_job("job_x") is None
    assert reg.find_job_by_batch_id("batch_x") is None
    assert not reg_path.exists()


def test_put_get_list_find(reg_path: Path) -> None:
    reg = Registry(reg_path)
    with reg.transaction() as tx:
        tx.put_job(job("job_20261125_101500_aa01", "2026-11-25T10:15:00", ("batch_a1", "batch_a2")))
        tx.put_job(job("job_20261126_090000_bb02", "2026-11-26T09:00:00", ("batch_b1", None)))
        tx.put_job(job("job_20261124_080000_cc03", "2026-11-24T08:00:00", (None,)))
        # reads inside the transaction see its own changes
        assert tx.get_job("job_20261125_101500_aa01")["batches"][1]["batch_id"] == "batch_a2"
        assert tx.find_job("batch_b1")["id"] == "job_20261126_090000_bb02"
        assert len(tx.list_jobs()) == 3

    assert json.loads(reg_path.read_text())  # valid JSON on disk
    again = Registry(reg_path)  # a new object reads from the file
    for r in (reg, again):
        assert r.get_job("job_20261125_101500_aa01")["batches"][0]["key"] == "job_20261125_101500_aa01_b0"
        assert r.get_job("nope") is None
        assert [j["id"] for j in r.list_jobs()] == [
            "job_20261126_090000_bb02",
            "job_20261125_101500_aa01",
            "job_20261124_080000_cc03",
        ]
        assert r.find_job_by_batch_id("batch_a2")["id"] == "job_20261125_101500_aa01"
        assert r.find_job_by_batch_id("batch_zz") is None
        assert r.find_job("batch_b1")["id"] == "job_20261126_090000_bb02"
        assert r.find_job("job_20261124_080000_cc03")["id"] == "job_20261124_080000_cc03"
        assert r.find_job("unknown") is None


def test_list_order_ties_and_missing_created_at(reg_path: Path) -> None:
    reg = Registry(reg_path)
    with reg.transaction() as tx:
        tx.put_job(job("job_b", "2026-01-01T00:00:00"))
        tx.put_job(job("job_a", "2026-01-01T00:00:00"))
        tx.put_job({"id": "job_old", "batches": []})
        tx.put_job(job("job_c", "2026-02-01T00:00:00"))
    assert [j["id"] for j in reg.list_jobs()] == ["job_c", "job_b", "job_a", "job_old"]


def test_upsert_replaces_and_delete(reg_path: Path) -> None:
    reg = Registry(reg_path)
    with reg.transaction() as tx:
        tx.put_job(job("job_1", batch_ids=("batch_1",)))
        tx.put_job(job("job_2"))
    with reg.transaction() as tx:
        j = tx.get_job("job_1")
        j["batches"][0]["status"] = "completed"
        tx.put_job(j)
        assert tx.delete_job("job_2") is True
        assert tx.delete_job("job_2") is False
        assert tx.get_job("job_2") is None
        assert tx.delete_job("never") is False
    assert reg.get_job("job_1")["batches"][0]["status"] == "completed"
    assert reg.get_job("job_2") is None
    assert [j["id"] for j in reg.list_jobs()] == ["job_1"]
    with reg.transaction() as tx:  # delete then put again in one transaction
        tx.delete_job("job_1")
        assert tx.find_job("batch_1") is None
        tx.put_job(job("job_1", batch_ids=("batch_new",)))
    assert reg.find_job("batch_new")["id"] == "job_1"
    assert reg.find_job("batch_1") is None


def test_returned_dicts_are_independent_copies(reg_path: Path) -> None:
    reg = Registry(reg_path)
    original = job("job_1", batch_ids=("batch_1",), counts={"rows": 3})
    with reg.transaction() as tx:
        tx.put_job(original)
        original["counts"]["rows"] = 999  # after put: must not reach the registry
        inside = tx.get_job("job_1")
        inside["batches"][0]["status"] = "mutated"
        assert tx.get_job("job_1")["batches"][0]["status"] == "validating"
        tx.list_jobs()[0]["counts"]["rows"] = -1
        tx.find_job("batch_1")["counts"]["rows"] = -2
    assert reg.get_job("job_1")["counts"]["rows"] == 3

    for getter in (lambda: reg.get_job("job_1"), lambda: reg.list_jobs()[0],
                   lambda: reg.find_job("batch_1"), lambda: reg.find_job_by_batch_id("batch_1")):
        got = getter()
        got["counts"]["rows"] = 12345
        got["batches"].append({"batch_id": "x", "key": "y"})
    assert reg.get_job("job_1")["counts"]["rows"] == 3
    assert len(reg.get_job("job_1")["batches"]) == 1
    assert Registry(reg_path).get_job("job_1")["counts"]["rows"] == 3


def test_put_job_validates(reg_path: Path) -> None:
    reg = Registry(reg_path)
    with pytest.raises(RegistryError, match="cannot be stored as JSON"):
        with reg.transaction() as tx:
            tx.put_job(job("job_1", payload=object()))
    with pytest.raises(RegistryError, match="'id'"):
        with reg.transaction() as tx:
            tx.put_job({"batches": []})
    with pytest.raises(RegistryError, match="batches"):
        with reg.transaction() as tx:
            tx.put_job({"id": "job_1", "batches": "batch_1"})
    assert not reg_path.exists()


def test_transaction_that_raises_writes_nothing(reg_path: Path, monkeypatch) -> None:
    reg = Registry(reg_path)
    with reg.transaction() as tx:
        tx.put_job(job("job_1"))
    before = reg_path.read_bytes()
    counter = WriteCounter(monkeypatch, reg_path)
    with pytest.raises(ZeroDivisionError):
        with reg.transaction() as tx:
            tx.put_job(job("job_2"))
            tx.delete_job("job_1")
            1 / 0
    assert counter.count == 0
    assert reg_path.read_bytes() == before
    assert reg.get_job("job_1") is not None and reg.get_job("job_2") is None
    with pytest.raises(RegistryError, match="ended"):
        tx.put_job(job("job_3"))  # the transaction object is dead after the block


def test_no_change_writes_nothing(reg_path: Path, monkeypatch) -> None:
    reg = Registry(reg_path)
    counter = WriteCounter(monkeypatch, reg_path)
    with reg.transaction() as tx:  # empty transaction on a missing file
        tx.list_jobs()
    assert counter.count == 0 and not reg_path.exists()

    with reg.transaction() as tx:
        tx.put_job(job("job_1", batch_ids=("batch_1",)))
    assert counter.count == 1
    stat_before = reg_path.stat()
    with reg.transaction() as tx:
        tx.put_job(tx.get_job("job_1"))  # same content: not a change
        tx.delete_job("job_missing")
        tx.put_job(job("job_tmp"))
        tx.delete_job("job_tmp")  # added then removed: not a change
        changed = tx.get_job("job_1")
        changed["batches"][0]["status"] = "completed"
        tx.put_job(changed)
        tx.put_job(tx.get_job("job_1") | {"batches": job("job_1", batch_ids=("batch_1",))["batches"]})
    assert counter.count == 1
    assert reg_path.stat().st_mtime_ns == stat_before.st_mtime_ns
    assert reg_path.stat().st_ino == stat_before.st_ino


def test_one_write_for_many_changes(reg_path: Path, monkeypatch) -> None:
    reg = Registry(reg_path)
    counter = WriteCounter(monkeypatch, reg_path)
    with reg.transaction() as tx:
        for i in range(300):
            tx.put_job(job(f"job_{i:04d}", batch_ids=(f"batch_{i}_0", f"batch_{i}_1")))
    assert counter.count == 1
    with reg.transaction() as tx:
        for i in range(0, 300, 2):
            j = tx.get_job(f"job_{i:04d}")
            j["batches"][1]["status"] = "in_progress"
            tx.put_job(j)
        for i in range(1, 40, 2):
            tx.delete_job(f"job_{i:04d}")
    assert counter.count == 2
    assert len(reg.list_jobs()) == 280
    assert reg.find_job("batch_10_1")["batches"][1]["status"] == "in_progress"


def test_backup_keeps_previous_good_version(reg_path: Path) -> None:
    reg = Registry(reg_path)
    with reg.transaction() as tx:
        tx.put_job(job("job_1"))
    with reg.transaction() as tx:
        tx.put_job(job("job_2"))
    if not reg.last_write_backed_up:
        pytest.skip("no hard links on this file system: no .bak is kept")
    bak = json.loads(Path(str(reg_path) + ".bak").read_text())
    assert set(bak["jobs"]) == {"job_1"}
    assert set(json.loads(reg_path.read_text())["jobs"]) == {"job_1", "job_2"}
    leftovers = [p.name for p in reg_path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_reads_follow_writes_of_other_registry_objects(reg_path: Path) -> None:
    reader, writer = Registry(reg_path), Registry(reg_path)
    assert reader.get_job("job_1") is None
    for n in range(5):
        with writer.transaction() as tx:
            tx.put_job(job("job_1", counts={"n": n}))
        assert reader.get_job("job_1")["counts"]["n"] == n


def test_nested_transaction_is_refused(reg_path: Path) -> None:
    reg = Registry(reg_path)
    with reg.transaction() as tx:
        tx.put_job(job("job_1"))
        with pytest.raises(RegistryError, match="nested"):
            with Registry(reg_path).transaction():
                pass
    assert reg.get_job("job_1") is not None


def test_threads_of_one_process_lose_nothing(reg_path: Path) -> None:
    import threading

    reg = Registry(reg_path)
    with reg.transaction() as tx:
        tx.put_job(job("job_shared", counts={"n": 0}))
    errors: list[BaseException] = []

    def work(own: Registry) -> None:
        try:
            for _ in range(50):
                with own.transaction() as tx:
                    j = tx.get_job("job_shared")
                    j["counts"]["n"] += 1
                    tx.put_job(j)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    # two threads share one Registry object, two have their own
    threads = [threading.Thread(target=work, args=(r,))
               for r in (reg, reg, Registry(reg_path), Registry(reg_path))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert reg.get_job("job_shared")["counts"]["n"] == 200


# ---------------------------------------------------------------------------------------------
# Corrupt file and lock timeout
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", [b'{"jobs": {"job_1": {"id": "job_1", ', b"", b"[1, 2]"])
def test_corrupt_file_raises_with_path(reg_path: Path, content: bytes) -> None:
    reg_path.parent.mkdir(parents=True)
    reg_path.write_bytes(content)
    reg = Registry(reg_path)
    for read in (lambda: reg.get_job("job_1"), reg.list_jobs, lambda: reg.find_job("b")):
        with pytest.raises(RegistryError) as err:
            read()
        assert str(reg_path) in str(err.value)
    with pytest.raises(RegistryError) as err:
        with reg.transaction() as tx:
            tx.put_job(job("job_2"))
    assert str(reg_path) in str(err.value)
    assert reg_path.read_bytes() == content  # left untouched


def test_corrupt_file_message_points_to_backup(reg_path: Path) -> None:
    reg = Registry(reg_path)
    with reg.transaction() as tx:
        tx.put_job(job("job_1"))
    with reg.transaction() as tx:
        tx.put_job(job("job_2"))
    if not reg.last_write_backed_up:
        pytest.skip("no hard links on this file system: no .bak is kept")
    reg_path.write_text('{"jobs": {')  # damaged by hand; the .bak is another inode
    with pytest.raises(RegistryError) as err:
        Registry(reg_path).list_jobs()
    assert str(reg_path) + ".bak" in str(err.value)
    assert "previous good copy" in str(err.value)
    assert set(json.loads(Path(str(reg_path) + ".bak").read_text())["jobs"]) == {"job_1"}


HOLD_LOCK = textwrap.dedent(
    """
    import sys, time
    from filelock import FileLock
    lock = FileLock(sys.argv[1])
    lock.acquire()
    print("locked", flush=True)
    sys.stdin.read()  # hold until the test closes our stdin
    lock.release()
    """
)


def test_lock_held_by_another_process_times_out(reg_path: Path) -> None:
    reg = Registry(reg_path, lock_timeout=0.5)
    with reg.transaction() as tx:
        tx.put_job(job("job_1"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(reg_path) + ".lock"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        with pytest.raises(RegistryError) as err:
            with reg.transaction() as tx:
                tx.put_job(job("job_2"))
        waited = time.monotonic() - t0
        message = str(err.value)
        assert str(reg_path) in message
        assert "locked by another process for more than 0.5 s" in message
        assert 0.4 <= waited < 5
        assert reg.get_job("job_1") is not None  # reads need no lock
        assert reg.get_job("job_2") is None
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    with reg.transaction() as tx:  # lock released: works again
        tx.put_job(job("job_2"))
    assert reg.get_job("job_2") is not None


# ---------------------------------------------------------------------------------------------
# Several processes at once: the key test
# ---------------------------------------------------------------------------------------------

WORKER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from core.registry import Registry

    path, name, rounds, start_at = Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    reg = Registry(path, lock_timeout=60)
    while time.time() < start_at:
        time.sleep(0.005)
    for i in range(rounds):
        with reg.transaction() as tx:
            for shared_id in ("job_shared_a", "job_shared_b"):
                job = tx.get_job(shared_id)
                job["counts"]["n"] += 1
                job["counts"].setdefault(name, 0)
                job["counts"][name] += 1
                job["batches"][0]["request_counts"]["completed"] += 1
                tx.put_job(job)
            if i % 4 == 0:
                tx.put_job({"id": f"job_{name}_{i:03d}", "created_at": f"2026-11-25T10:{i % 60:02d}:00",
                            "batches": [{"batch_id": f"batch_{name}_{i}", "key": f"k_{name}_{i}"}]})
    print("done", flush=True)
    """
)

READER = textwrap.dedent(
    """
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from core.registry import Registry

    path, stop_at = Path(sys.argv[2]), float(sys.argv[3])
    reg = Registry(path)
    reads, last = 0, -1
    while time.time() < stop_at:
        n = reg.get_job("job_shared_a")["counts"]["n"]
        assert n >= last, (n, last)  # never goes back, never a half-written file
        last = n
        jobs = reg.list_jobs()
        assert any(j["id"] == "job_shared_b" for j in jobs)
        reads += 1
        if n >= int(sys.argv[4]):
            break
    print(reads, last, flush=True)
    """
)


def test_concurrent_processes_lose_nothing(reg_path: Path) -> None:
    processes, rounds = 4, 100
    reg = Registry(reg_path)
    with reg.transaction() as tx:
        for shared_id in ("job_shared_a", "job_shared_b"):
            tx.put_job({"id": shared_id, "created_at": "2026-11-25T09:00:00", "counts": {"n": 0},
                        "batches": [{"batch_id": f"batch_{shared_id}", "key": "k0",
                                     "request_counts": {"completed": 0}}]})
    start_at = time.time() + 1.5  # let every interpreter start, then go together
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(ROOT), str(reg_path), f"w{n}", str(rounds), str(start_at)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        for n in range(processes)
    ]
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(ROOT), str(reg_path), str(start_at + 60),
         str(processes * rounds)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        results = [w.communicate(timeout=90) for w in workers]
        reader_out, reader_err = reader.communicate(timeout=90)
    finally:
        for p in [*workers, reader]:
            if p.poll() is None:
                p.kill()
    for (out, err), w in zip(results, workers):
        assert w.returncode == 0, err
        assert out.strip() == "done"
    assert reader.returncode == 0, reader_err
    reads, last_seen = map(int, reader_out.split())
    assert reads > 0

    data = json.loads(reg_path.read_text())  # the file is valid JSON
    final = Registry(reg_path)
    total = processes * rounds
    for shared_id in ("job_shared_a", "job_shared_b"):
        shared = final.get_job(shared_id)
        assert shared["counts"]["n"] == total  # e.g. 400/400
        assert shared["batches"][0]["request_counts"]["completed"] == total
        assert all(shared["counts"][f"w{n}"] == rounds for n in range(processes))
    own = [j for j in final.list_jobs() if not j["id"].startswith("job_shared")]
    assert len(own) == processes * rounds // 4
    assert len(data["jobs"]) == 2 + len(own)
    for n in range(processes):
        for i in range(0, rounds, 4):
            assert final.find_job(f"batch_w{n}_{i}")["id"] == f"job_w{n}_{i:03d}"
