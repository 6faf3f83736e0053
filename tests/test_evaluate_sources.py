"""Input files carry the sha256 of the bytes actually read (uploads too) and, when read from
disk, their path; the job records both, task 2 inherits them, and the methods record uses the
recorded digest, saying when the file on disk has changed since."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import openpyxl

from conftest import finish, sample_files
from core.evaluate import build_manifest
from core.inputs import read_input, read_table
from core.jobs import JobService

TASK1 = "investment_activity_classification"
TASK2 = "assetization_features_scoring"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_reader_hashes_the_bytes_it_parsed(tmp_path: Path) -> None:
    data = "pdf_file_name;paragraph_text\r\nFfBF_A_R.pdf;Wir investierten 5 Mio. EUR in Moore.\r\n".encode("cp1252")
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    table = read_input(path)
    assert table.report.sha256 == digest(data) and table.report.path == os.path.abspath(path)
    upload = read_input(("export.csv", data))
    assert upload.report.sha256 == digest(data) and upload.report.path is None  # an upload has no path
    assert read_table(path).sha256 == digest(data)

    book = openpyxl.Workbook()
    book.active.append(["paragraph_text"])
    book.active.append(["A paragraph."])
    buffer = io.BytesIO()
    book.save(buffer)
    assert read_input(("book.xlsx", buffer.getvalue())).report.sha256 == digest(buffer.getvalue())


def test_job_records_digests_and_manifest_uses_them(service: JobService, tmp_path: Path) -> None:
    on_disk = tmp_path / "inputs" / "reports.csv"
    on_disk.parent.mkdir()
    on_disk.write_bytes(sample_files()[0].read_bytes())
    uploaded = sample_files()[1].read_bytes()
    job = service.submit(service.prepare(TASK1, inputs=[on_disk, ("uploaded.csv", uploaded)]))
    disk_source, upload_source = service.get(job.id).sources
    assert (disk_source.path, disk_source.sha256) == (str(on_disk), digest(on_disk.read_bytes()))
    assert (upload_source.path, upload_source.sha256) == (None, digest(uploaded))
    finish(service, job.id)
    service.collect(job.id)

    first, second = build_manifest(service, job.id).to_record()["inputs"]
    assert (first["sha256"], first["sha256_from"], first["changed_since"]) == (disk_source.sha256, "read", False)
    assert (second["sha256"], second["sha256_from"], second["path"]) == (digest(uploaded), "read", None)

    # the file is edited after the job read it: the record keeps what was read and says so
    on_disk.write_bytes(on_disk.read_bytes() + b"FfBF_X_R.pdf,1,An added paragraph.\n")
    manifest = build_manifest(service, job.id)
    changed = manifest.to_record()["inputs"][0]
    assert changed["sha256"] == disk_source.sha256 and changed["changed_since"] is True
    markdown = manifest.to_markdown()
    assert f"sha256 `{disk_source.sha256}`; the file on disk has changed since" in markdown
    assert f"sha256 `{digest(uploaded)}`" in markdown and "not kept" not in markdown

    task2 = service.submit(service.prepare(TASK2, parent=job.id))  # reads the parent's rows, not files
    assert [(s.path, s.sha256) for s in service.get(task2.id).sources] == [(disk_source.path, disk_source.sha256),
                                                                          (None, upload_source.sha256)]
    finish(service, task2.id)


def test_jobs_planned_before_digests_fall_back(service: JobService, tmp_path: Path) -> None:
    """A job recorded without digests: a path is hashed as the file is now (and said to be),
    an upload's bytes are 'not kept'."""
    path = tmp_path / "reports.csv"
    path.write_bytes(sample_files()[0].read_bytes())
    job = service.submit(service.prepare(TASK1, inputs=[path, ("uploaded.csv", sample_files()[1].read_bytes())]))
    with service.registry.transaction() as tx:
        stored = tx.get_job(job.id)
        for source in stored["sources"]:
            source.pop("sha256")
        tx.put_job(stored)
    finish(service, job.id)
    manifest = build_manifest(service, job.id)
    from_disk, upload = manifest.to_record()["inputs"]
    assert (from_disk["sha256"], from_disk["sha256_from"]) == (digest(path.read_bytes()), "file now")
    assert (upload["sha256"], upload["sha256_from"]) == ("not kept", None)
    assert "hashed later from the file on disk" in manifest.to_markdown()
