"""On-disk layout of the local backend's state directory.

state_dir/
  files/<file_id>.data       uploaded or generated file content (bytes as given)
  files/<file_id>.json       its FileObject
  batches/<batch_id>.json    {"batch": <Batch object>, "seq": int, "deadline": float}
  batches/<batch_id>.results.jsonl
                             append-only log, one finished request per line
                             {"id", "custom_id", "status_code", "request_id", "body"}

Object files are written atomically (temp file + os.replace). The results log is appended
and flushed line by line, so a crash loses at most the line being written; a torn last line
is ignored on reading and terminated before the next append.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import orjson


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _safe_id(object_id: str) -> bool:
    return bool(object_id) and all(c.isalnum() or c in "-_" for c in object_id)


class Store:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.files_dir = self.state_dir / "files"
        self.batches_dir = self.state_dir / "batches"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.batches_dir.mkdir(parents=True, exist_ok=True)

    # ---- files -------------------------------------------------------------------------
    def file_data_path(self, file_id: str) -> Path:
        return self.files_dir / f"{file_id}.data"

    def save_file(self, meta: dict[str, Any], data: bytes) -> None:
        atomic_write_bytes(self.file_data_path(meta["id"]), data)
        atomic_write_bytes(self.files_dir / f"{meta['id']}.json", orjson.dumps(meta))

    def load_file_meta(self, file_id: str) -> dict[str, Any] | None:
        if not _safe_id(file_id):
            return None
        path = self.files_dir / f"{file_id}.json"
        try:
            return orjson.loads(path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return None

    def delete_file(self, file_id: str) -> None:
        for path in (self.files_dir / f"{file_id}.json", self.file_data_path(file_id)):
            try:
                path.unlink()
            except FileNotFoundError:
                pass

    def iter_file_metas(self) -> Iterator[dict[str, Any]]:
        for path in self.files_dir.glob("*.json"):
            try:
                yield orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue

    def read_file(self, file_id: str) -> bytes:
        return self.file_data_path(file_id).read_bytes()

    # ---- batches -----------------------------------------------------------------------
    def save_batch(self, doc: dict[str, Any]) -> None:
        atomic_write_bytes(self.batches_dir / f"{doc['batch']['id']}.json", orjson.dumps(doc))

    def iter_batch_docs(self) -> Iterator[dict[str, Any]]:
        for path in self.batches_dir.glob("batch_*.json"):
            try:
                yield orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue

    def results_path(self, batch_id: str) -> Path:
        return self.batches_dir / f"{batch_id}.results.jsonl"

    def read_results(self, batch_id: str) -> dict[str, dict[str, Any]]:
        """Finished requests by custom_id; the first record of a custom_id wins."""
        out: dict[str, dict[str, Any]] = {}
        path = self.results_path(batch_id)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return out
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue  # torn line from a crash
            if isinstance(record, dict) and isinstance(record.get("custom_id"), str):
                out.setdefault(record["custom_id"], record)
        return out


class ResultsLog:
    """Append-only writer of one batch's results log."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "ab")
        # Terminate a torn last line left by a crash before appending new records.
        if self._fh.tell() > 0:
            with open(path, "rb") as rd:
                rd.seek(-1, os.SEEK_END)
                if rd.read(1) != b"\n":
                    self._fh.write(b"\n")
                    self._fh.flush()

    def append(self, record: dict[str, Any]) -> None:
        self._fh.write(orjson.dumps(record) + b"\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
