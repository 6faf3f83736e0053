"""Taking up a state directory again after a stop or a crash.

Every finished request was appended to its batch's results log before it was counted, so
the batches are rebuilt from their saved documents plus their logs: answered requests are
counted (and not answered again), unreadable documents are skipped, and the engine goes on
with the batches that were still active.
"""

from __future__ import annotations

from .api import is_expiry
from .batchstate import BatchState, as_int
from .store import Store


def restore_batches(store: Store) -> list[BatchState]:
    """The batches saved in ``store``, each with what its results log says was answered."""
    batches: list[BatchState] = []
    for doc in store.iter_batch_docs():
        try:
            batch = BatchState(obj=doc["batch"], seq=int(doc["seq"]), deadline=float(doc["deadline"]))
        except (KeyError, TypeError, ValueError):
            continue
        expiry = doc.get("output_expiry_seconds")
        batch.output_expiry_seconds = expiry if is_expiry(expiry) else None
        for custom_id, record in store.read_results(batch.id).items():
            ok = 200 <= as_int(record.get("status_code")) < 300
            batch.done[custom_id] = ok
            batch.count(ok, record.get("body"))
        batches.append(batch)
    return batches
