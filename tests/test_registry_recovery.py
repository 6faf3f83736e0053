"""A lost, emptied or damaged registry never loses a job, and a killed writer leaves nothing
behind: real files, real processes (kill -9), the real local backend and the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import finish, sample_files, run_cli as run
from core import monitoring
from core.jobs import JobService
from core.jobs.common import SNAPSHOT_FILE
from core.jobs.recovery import JobRecordDamaged
from core.registry import DELETED_TABLE, SNAPSHOT_GRACE_SECONDS, SNAPSHOT_NAME, Registry

ROOT = Path(__file__).resolve().parents[1]
TASK1 = "investment_activity_classification"


def job(job_id: str, **extra: object) -> dict:
    return {"id": job_id, "created_at": "2026-11-25T10:15:00+00:00", "batches": [], **extra}


def ids(registry: Registry) -> set[str]:
    return {j["id"] for j in registry.list_jobs()}


def on_disk(path: Path) -> set[str]:
    return set(json.loads(path.read_bytes())["jobs"])


def write_snapshot(jobs_dir: Path, job_id: str, *, age: float = SNAPSHOT_GRACE_SECONDS + 60) -> Path:
    """A job folder with its job.json snapshot, written ``age`` seconds ago."""
    folder = jobs_dir / job_id
    folder.mkdir(parents=True)
    snapshot = folder / SNAPSHOT_NAME
    snapshot.write_text(json.dumps(job(job_id, note="as submitted")))
    then = time.time() - age
    os.utime(snapshot, (then, then))
    return snapshot


def fill(registry: Registry, *job_ids: str) -> None:
    """One transaction (one file write) per job: the .bak then holds all but the last."""
    for job_id in job_ids:
        with registry.transaction() as tx:
            tx.put_job(job(job_id))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "store"
    folder.mkdir()
    return folder


# ---------------------------------------------------------------------------------------------
# Item 7: a missing or emptied registry with evidence of jobs is never treated as empty
# ---------------------------------------------------------------------------------------------


def test_snapshot_file_name_is_the_one_submission_writes() -> None:
    assert SNAPSHOT_NAME == SNAPSHOT_FILE


def test_missing_registry_is_restored_from_its_backup_and_the_job_folders(data: Path) -> None:
    path = data / "registry.json"
    fill(Registry(path), "job_a", "job_b", "job_c")  # .bak: a and b
    write_snapshot(data / "jobs", "job_c")  # c only in its folder (its submit was the last write)
    write_snapshot(data / "jobs", "job_a")  # in the .bak too: the .bak's record wins
    path.unlink()

    reg = Registry(path)
    assert ids(reg) == {"job_a", "job_b", "job_c"}
    assert "note" not in reg.get_job("job_a") and reg.get_job("job_c")["note"] == "as submitted"
    assert on_disk(path) == {"job_a", "job_b", "job_c"}  # written back, under the lock
    (note,) = reg.recovery_notes
    assert (note.reason, note.restored, note.rebuilt) == ("missing", ("job_a", "job_b"), ("job_c",))
    assert "was missing" in note.message and "registry.json.bak" in note.message
    assert "python -m core registry --rebuild" in note.message
    logged = [json.loads(line) for line in Path(str(path) + ".recovery.log").read_text().splitlines()]
    assert logged[-1]["restored"] == ["job_a", "job_b"] and logged[-1]["rebuilt"] == ["job_c"]

    # the writes that follow keep every job in the file and in the backup
    fill(reg, "job_d", "job_e")
    assert on_disk(path) == {"job_a", "job_b", "job_c", "job_d", "job_e"}
    assert {"job_a", "job_b", "job_c"} <= on_disk(Path(str(path) + ".bak"))
    assert len(reg.recovery_notes) == 1  # said once


def test_a_transaction_on_a_missing_registry_restores_first(data: Path) -> None:
    path = data / "registry.json"
    fill(Registry(path), "job_a", "job_b")
    path.unlink()
    reg = Registry(path)
    with reg.transaction() as tx:  # e.g. a new submission: it must not start an empty registry
        assert tx.get_job("job_a") is not None
        tx.put_job(job("job_new"))
    assert on_disk(path) == {"job_a", "job_new"}
    assert reg.recovery_notes[0].restored == ("job_a",)


def test_a_block_that_fails_writes_nothing_and_hides_no_lost_job(data: Path) -> None:
    path = data / "registry.json"
    fill(Registry(path), "job_a", "job_b")
    path.unlink()
    reg = Registry(path)
    with pytest.raises(ZeroDivisionError):
        with reg.transaction():
            1 / 0
    assert not path.exists() and reg.recovery_notes == []  # the restore was part of the block
    assert ids(reg) == {"job_a"}  # the next read restores it


def test_registry_that_holds_no_jobs_while_its_backup_does_is_restored(data: Path) -> None:
    path = data / "registry.json"
    fill(Registry(path), "job_a", "job_b")
    path.write_text('{"jobs": {}}')  # parses, but empty
    reg = Registry(path)
    assert ids(reg) == {"job_a"}
    assert reg.recovery_notes[0].reason == "empty"


def test_backup_holding_jobs_the_file_lacks_is_kept_not_overwritten(data: Path) -> None:
    path = data / "registry.json"
    bak = Path(str(path) + ".bak")
    reg = Registry(path)
    fill(reg, "job_a", "job_b", "job_c")
    assert on_disk(bak) == {"job_a", "job_b"}
    path.write_text(json.dumps({"jobs": {"job_x": job("job_x")}}))  # an older copy put back by hand
    fill(Registry(path), "job_y", "job_z")  # two writes: the old code lost job_a and job_b here

    kept = sorted(data.glob("registry.json.bak.*"))
    assert [p.name for p in kept if not p.name.endswith(".tmp")] == [kept[0].name]
    assert on_disk(kept[0]) == {"job_a", "job_b"}
    assert on_disk(bak) == {"job_x", "job_y"}

    # taking them back on demand: every job any backup holds, and the file's own jobs kept
    note = Registry(path).recover()
    assert note is not None and note.restored == ("job_a", "job_b")  # job_c was only in the overwritten file
    assert {"job_a", "job_b", "job_x", "job_y", "job_z"} <= on_disk(path)


def test_young_snapshot_is_left_to_the_submission_writing_it(data: Path) -> None:
    path = data / "registry.json"
    write_snapshot(data / "jobs", "job_new", age=1)  # written, not recorded yet: a submission in flight
    reg = Registry(path)
    assert reg.list_jobs() == [] and reg.recovery_notes == [] and not path.exists()
    with reg.transaction() as tx:  # the submission records it: no false alarm
        tx.put_job(job("job_new"))
    assert reg.recovery_notes == []
    # on demand, young snapshots count too
    write_snapshot(data / "jobs", "job_other", age=1)
    note = reg.recover()
    assert note is not None and note.rebuilt == ("job_other",) and ids(reg) == {"job_new", "job_other"}


def test_deleted_jobs_are_remembered_not_restored(data: Path) -> None:
    path = data / "registry.json"
    reg = Registry(path)
    fill(reg, "job_a", "job_b")
    with reg.transaction() as tx:
        tx.delete_job("job_a")
        tx.delete_job("job_b")
    assert set(json.loads(path.read_bytes())[DELETED_TABLE]) == {"job_a", "job_b"}
    fill(reg, "job_c")
    with reg.transaction() as tx:
        tx.delete_job("job_c")
    assert Registry(path).list_jobs() == []  # empty on purpose: nothing comes back
    fill(reg, "job_d", "job_e")
    assert list(data.glob("registry.json.bak.2*")) == []  # a deletion is not a loss: no kept copy
    assert reg.recovery_notes == []
    with reg.transaction() as tx:  # stored again: no longer deleted
        tx.put_job(job("job_a"))
    assert set(json.loads(path.read_bytes())[DELETED_TABLE]) == {"job_b", "job_c"}


def test_unreadable_backup_is_reported_and_kept(data: Path) -> None:
    path = data / "registry.json"
    bak = Path(str(path) + ".bak")
    bak.write_text('{"jobs": {"job_a": {"id": "job_a", ')  # damaged, and the registry is missing
    reg = Registry(path)
    assert reg.list_jobs() == []
    (note,) = reg.recovery_notes
    assert note.problems and "registry.json.bak" in note.problems[0] and "nothing could be restored" in note.message
    reg.list_jobs()
    assert len(reg.recovery_notes) == 1  # not repeated on every read
    fill(reg, "job_x", "job_y", "job_z")
    kept = [p for p in data.glob("registry.json.bak.2*")]
    assert len(kept) == 1 and kept[0].read_text().startswith('{"jobs": {"job_a"')


def test_rebuild_sets_an_unreadable_registry_aside(data: Path) -> None:
    path = data / "registry.json"
    fill(Registry(path), "job_a", "job_b")
    path.write_text('{"jobs": {"job_a"')
    with pytest.raises(Exception, match="registry --rebuild"):
        Registry(path).list_jobs()
    reg = Registry(path)
    note = reg.recover(set_aside_unreadable=True)
    assert note is not None and note.restored == ("job_a",) and note.set_aside
    assert Path(note.set_aside).read_text() == '{"jobs": {"job_a"'  # moved, never deleted
    assert ids(reg) == {"job_a"}


READER = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from core.registry import Registry

    reg = Registry(Path(sys.argv[2]))
    while time.time() < float(sys.argv[3]):
        time.sleep(0.002)
    jobs = sorted(j["id"] for j in reg.list_jobs())
    print(json.dumps({"jobs": jobs, "notes": len(reg.recovery_notes)}), flush=True)
    """
)


def test_processes_reading_a_lost_registry_at_once_restore_it_once(data: Path) -> None:
    path = data / "registry.json"
    fill(Registry(path), *[f"job_{n:02d}" for n in range(20)])
    path.unlink()
    start_at = time.time() + 1.5  # let every interpreter start, then read together
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(ROOT), str(path), str(start_at)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outcomes = []
    for reader in readers:
        out, err = reader.communicate(timeout=60)
        assert reader.returncode == 0, err
        outcomes.append(json.loads(out))
    assert all(o["jobs"] == [f"job_{n:02d}" for n in range(19)] for o in outcomes)
    assert sum(o["notes"] for o in outcomes) == 1  # one of them restored it, under the lock
    assert len(Path(str(path) + ".recovery.log").read_text().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# Item 9: a writer killed mid-write leaves a temp file; the next transaction removes it
# ---------------------------------------------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from pathlib import Path
    from core.registry import Registry

    reg = Registry(Path(sys.argv[2]))
    n = 0
    while True:
        n += 1
        with reg.transaction() as tx:
            tx.put_job({"id": "job_counter", "batches": [], "n": n})
        if n == 1:
            print("started", flush=True)  # one complete write: the next ones are killed
    """
)


def test_kill_9_during_writes_leaves_no_temp_file_after_the_next_transaction(data: Path) -> None:
    path = data / "registry.json"
    padding = "x" * 4000
    with Registry(path).transaction() as tx:  # ~8 MB: each write takes a while
        for i in range(2000):
            tx.put_job(job(f"job_{i:05d}", padding=padding))
    leftovers: list[str] = []
    for _attempt in range(20):
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(ROOT), str(path)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert writer.stdout.readline().strip() == "started"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # kill it while its temp file is being written
                if any(n.startswith(".registry.json.") and n.endswith(".tmp") for n in os.listdir(data)):
                    os.kill(writer.pid, signal.SIGKILL)
                    break
        finally:
            if writer.poll() is None:
                writer.kill()
            writer.wait(timeout=30)
        assert writer.returncode == -signal.SIGKILL
        leftovers = [n for n in os.listdir(data) if n.startswith(".registry.json.") and n.endswith(".tmp")]
        if leftovers:
            break
    assert leftovers, "the writer was never caught mid-write"
    (data / "registry.json.bak.tmp").write_bytes(b"")  # killed between linking and renaming the backup
    (data / ".other.json.abc.tmp").write_bytes(b"not ours")
    (data / "notes.tmp").write_bytes(b"not ours")

    reg = Registry(path)
    before = reg.get_job("job_counter")["n"]  # the file is intact: the last complete write
    assert len(reg.list_jobs()) == 2001
    with reg.transaction() as tx:
        tx.put_job({"id": "job_counter", "batches": [], "n": before + 1})
    remaining = sorted(n for n in os.listdir(data) if n.endswith(".tmp"))
    assert remaining == [".other.json.abc.tmp", "notes.tmp"]
    assert reg.leftovers_removed == len(leftovers) + 1
    assert Registry(path).get_job("job_counter")["n"] == before + 1 and len(Registry(path).list_jobs()) == 2001


# ---------------------------------------------------------------------------------------------
# The command line and the service, with the real local backend
# ---------------------------------------------------------------------------------------------


def test_cli_lists_the_jobs_of_a_lost_registry_and_says_so(service: JobService, settings) -> None:
    job_ids = [service.submit(service.prepare(TASK1, inputs=[p])).id for p in sample_files()]
    finish(service, *job_ids)
    settings.registry_path.unlink()  # lost; its .bak and the job folders remain

    code, out, err = run(service, "status", "--list-jobs")
    assert code == 0, err
    assert "No jobs yet" not in out
    assert all(job_id in out for job_id in job_ids) and out.count("completed") == 2
    assert "notice: The job registry" in err and "was missing" in err
    assert on_disk(settings.registry_path) == set(job_ids)


def test_cli_rebuild_from_job_folders_and_the_provider(service: JobService, settings, tmp_path: Path) -> None:
    submitted = service.submit(service.prepare(TASK1, inputs=sample_files(), max_requests_per_file=30))
    finish(service, submitted.id)
    batch_ids = [b.batch_id for b in service.get(submitted.id).batches]
    settings.registry_path.unlink()
    Path(str(settings.registry_path) + ".bak").unlink()  # both gone: only the job folder is left

    code, out, err = run(service, "registry", "--rebuild")
    assert code == 0, err
    assert "1 job rebuilt from its job folder" in out and f"adopted: {submitted.id}/b000" in out
    rebuilt = service.get(submitted.id)
    assert [b.batch_id for b in rebuilt.batches] == batch_ids and rebuilt.status == "completed"
    code, out, err = run(service, "download", "--batch-id", submitted.id, "--output-dir", str(tmp_path / "out"))
    assert code == 0, err
    assert "48 rows (48 succeeded)" in out

    code, out, err = run(service, "registry")
    assert code == 0, err
    assert f"Registry: {settings.registry_path}" in out and "1 job(s)" in out
    assert "Job folders: 1" in out and "Last recovery" in out
    code, out, _ = run(service, "registry", "--rebuild")  # nothing lacking now
    assert code == 0 and "lacked no job" in out


# ---------------------------------------------------------------------------------------------
# Item 8: one damaged record is reported for that job; the others keep working
# ---------------------------------------------------------------------------------------------


def test_one_damaged_record_blocks_nothing_else(service: JobService, tmp_path: Path) -> None:
    healthy, broken = (service.submit(service.prepare(TASK1, inputs=[p])).id for p in sample_files())
    finish(service, healthy, broken)
    with service.registry.transaction() as tx:
        record = tx.get_job(broken)
        record["n_requests"] = "many"
        record["batches"][0]["status"] = "in_progress"  # live: refresh parses it
        tx.put_job(record)

    assert [j.id for j in service.list_jobs()] == [healthy]
    (damage,) = service.damaged_jobs()
    assert str(damage).startswith(f"job {broken}: record damaged (n_requests: ") and "other jobs are fine" in str(damage)
    with pytest.raises(JobRecordDamaged, match=f"{broken} is damaged"):
        service.get(broken)

    service.refresh()
    assert service.refresh([healthy])[0].status == "completed"
    report = service.reconcile()
    assert any(broken in p and "damaged" in p for p in report.problems)
    assert service.registry.get_job(broken)["n_requests"] == "many"  # left as it is, not overwritten
    assert service.collect(healthy).counts["succeeded"] > 0
    cycle = monitoring.refresh_cycle(service)
    assert [j.id for j in cycle.jobs] == [healthy]

    code, out, err = run(service, "status", "--list-jobs")
    assert code == 0, err
    assert healthy in out and f"warning: job {broken}: record damaged (n_requests:" in err
    code, out, err = run(service, "download", "--batch-id", healthy, "--output-dir", str(tmp_path / "out"))
    assert code == 0, err


def test_a_backup_that_already_names_the_file_leaves_no_link_behind(tmp_path: Path) -> None:
    """A kill between linking the backup and replacing the file leaves .bak naming the live
    file; the next write must not leave its .bak.tmp link behind (a rename between two names
    of one file does nothing)."""
    from core.registry import Registry as _Registry

    registry = _Registry(tmp_path / "registry.json")
    for n in range(2):
        with registry.transaction() as tx:
            tx.put_job({"id": f"job_{n}", "batches": []})
    bak = tmp_path / "registry.json.bak"
    bak.unlink()
    os.link(tmp_path / "registry.json", bak)  # as the kill left it
    with registry.transaction() as tx:
        tx.put_job({"id": "job_2", "batches": []})
    assert not (tmp_path / "registry.json.bak.tmp").exists()
    assert {j["id"] for j in registry.list_jobs()} == {"job_0", "job_1", "job_2"}
