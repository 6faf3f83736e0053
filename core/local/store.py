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

Everything here is research data: folders are 0700, files 0600 (core.safefs). Ids arrive from
clients, so an id only ever names a path after it matched the strict id pattern; any other id
is an object that does not exist (UnknownId, a 404 at the HTTP layer).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import orjson

from core.safefs import atomic_write, is_safe_id, open_private, private_dir, restrict_dir


class UnknownId(LookupError):
    """An id that cannot name any stored object (it would not be a plain, safe file name)."""


def _object_path(folder: Path, object_id: object, suffix: str) -> Path:
    """``folder/<object_id><suffix>``, for ids that match the strict id pattern only."""
    if not is_safe_id(object_id):
        raise UnknownId(f"No such object: {str(object_id)[:200]!r}")
    return folder / f"{object_id}{suffix}"


class Store:
    """Files, batches and results logs of one state directory, on disk."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.files_dir = self.state_dir / "files"
        self.batches_dir = self.state_dir / "batches"
        private_dir(self.state_dir)
        # A state dir left open by an older version: closing it makes everything below private.
        restrict_dir(self.state_dir)
        private_dir(self.files_dir)
        private_dir(self.batches_dir)

    # ---- files -------------------------------------------------------------------------
    def file_data_path(self, file_id: str) -> Path:
        """Where the content of ``file_id`` lives. Raises UnknownId for an unsafe id."""
        return _object_path(self.files_dir, file_id, ".data")

    def save_file(self, meta: dict[str, Any], data: bytes) -> None:
        """Store a file's content, then its FileObject (which makes it visible)."""
        atomic_write(self.file_data_path(meta["id"]), data)
        atomic_write(_object_path(self.files_dir, meta["id"], ".json"), orjson.dumps(meta))

    def load_file_meta(self, file_id: str) -> dict[str, Any] | None:
        """The FileObject of ``file_id``, or None when there is none (or the id is unsafe)."""
        if not is_safe_id(file_id):
            return None
        path = _object_path(self.files_dir, file_id, ".json")
        try:
            return orjson.loads(path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            return None

    def delete_file(self, file_id: str) -> None:
        """Remove a file's object and content. Raises UnknownId for an unsafe id."""
        for path in (_object_path(self.files_dir, file_id, ".json"), self.file_data_path(file_id)):
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
        """The content of ``file_id``."""
        return self.file_data_path(file_id).read_bytes()

    # ---- batches -----------------------------------------------------------------------
    def save_batch(self, doc: dict[str, Any]) -> None:
        """Write one batch document atomically. Raises UnknownId for an unsafe batch id."""
        atomic_write(_object_path(self.batches_dir, doc["batch"]["id"], ".json"), orjson.dumps(doc))

    def iter_batch_docs(self) -> Iterator[dict[str, Any]]:
        """Every readable batch document whose id is safe (others could not be saved again)."""
        for path in self.batches_dir.glob("batch_*.json"):
            try:
                doc = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            batch = doc.get("batch") if isinstance(doc, dict) else None
            if isinstance(batch, dict) and is_safe_id(batch.get("id")):
                yield doc

    def results_path(self, batch_id: str) -> Path:
        """The results log of ``batch_id``. Raises UnknownId for an unsafe id."""
        return _object_path(self.batches_dir, batch_id, ".results.jsonl")

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
        private_dir(path.parent)
        self._fh = open_private(path, "ab")
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
