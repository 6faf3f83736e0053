"""Read-only views of job records for showing them, without pydantic.

``python -m core status --list-jobs`` (and the status of a finished job) only shows records.
Validating each one as a :class:`core.models.Job` means importing pydantic and building the
models, a few tenths of a second at every start, longer than the whole listing. A view is
read instead, and validation is lazy:

* every record in the registry was written from a validated ``Job`` (``Job.to_record``);
* a view reads the fields it shows, with the record's defaults, and checks each one's type;
  a record with anything missing, unknown or of another type (an older record, a hand edit)
  is handed to pydantic, which gives the job or the same "record damaged" report as before;
* anything that acts on a job (refresh, cancel, collect, retry, edit, ...) still goes
  through :meth:`JobService.get` and full validation.

The cost of the trade: a record damaged only in a field no view shows (its prompts, its job
folder) is listed like the others; the damage is reported when the job is acted on, and by
``python -m core registry``, which validates every record.

Status, activity and counts come from the same rules as the records' (:mod:`core.jobstate`).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Union

from core.jobstate import BatchState, JobState

if TYPE_CHECKING:
    from core.jobs.recovery import DamagedRecord
    from core.models import Job

    ShownJob = Union["JobView", Job]  # what listing and status show: a view, or a validated record

__all__ = ["BATCH_FIELDS", "JOB_FIELDS", "REQUIRED", "SOURCE_FIELDS", "BatchView", "JobView", "SourceView", "read_view",
           "read_views"]

REQUIRED = object()  # no default: a record without the field is not read as a view
_INT = (int,)
_STR = (str,)
_OPT_STR = (str, type(None))
_NO_ITEMS: Mapping[str, Any] = MappingProxyType({})  # an empty default no view can change

# field -> (accepted types, default as in core.models); tests/test_jobview.py checks the names,
# defaults and required fields against the pydantic models, so the two cannot drift apart.
BATCH_FIELDS: dict[str, tuple[tuple[type, ...], Any]] = {
    "key": (_STR, REQUIRED),
    "request_file": (_STR, REQUIRED),
    "n_requests": (_INT, REQUIRED),
    "first_custom_id": (_STR, REQUIRED),
    "last_custom_id": (_STR, REQUIRED),
    "status": (_STR, "pending"),
    "batch_id": (_OPT_STR, None),
    "output_file_id": (_OPT_STR, None),
    "total": (_INT, 0),
    "completed": (_INT, 0),
    "failed": (_INT, 0),
    "errors": ((list,), ()),
    "timestamps": ((dict,), _NO_ITEMS),
    "last_checked_at": (_OPT_STR, None),
    "last_error": (_OPT_STR, None),
}
SOURCE_FIELDS: dict[str, tuple[tuple[type, ...], Any]] = {
    "index": (_INT, REQUIRED),
    "name": (_STR, REQUIRED),
    "rows_read": (_INT, REQUIRED),
    "rows_kept": (_INT, REQUIRED),
}
JOB_FIELDS: dict[str, tuple[tuple[type, ...], Any]] = {
    "id": (_STR, REQUIRED),
    "task": (_STR, REQUIRED),
    "provider": (_STR, REQUIRED),
    "model": (_STR, REQUIRED),
    "max_tokens": (_INT, REQUIRED),
    "created_at": (_STR, REQUIRED),
    "name": (_OPT_STR, None),
    "note": (_OPT_STR, None),
    "archived_at": (_OPT_STR, None),
    "parent_job_id": (_OPT_STR, None),
    "retry_of": (_OPT_STR, None),
    "job_dir": (_STR, REQUIRED),
    "output_dir": (_STR, REQUIRED),
    "n_rows": (_INT, REQUIRED),
    "n_requests": (_INT, REQUIRED),
    "sources": ((list,), REQUIRED),
    "prompts": ((dict,), REQUIRED),
    "estimate": ((dict,), REQUIRED),
    "batches": ((list,), REQUIRED),
    "collected_at": (_OPT_STR, None),
    "result_counts": ((dict, type(None)), None),
    "output_files": ((list,), ()),
    "usage": ((dict, type(None)), None),
}
_PROVIDERS = ("openai", "local")  # core.models.Job.provider


class _NotAView(Exception):
    """The record holds something a view does not read as it is: pydantic decides."""


def _fields(record: Any, spec: Mapping[str, tuple[tuple[type, ...], Any]]) -> dict[str, Any]:
    # exact types, as JSON parsing gives them: a bool is not a count here (pydantic decides)
    if type(record) is not dict:
        raise _NotAView
    values = {name: record.get(name, default) for name, (_, default) in spec.items()}
    for name, (types, default) in spec.items():
        value = values[name]
        if type(value) not in types and (value is REQUIRED or value is not default):  # missing, or another type
            raise _NotAView
    return values


def _int_values(mapping: Mapping[str, Any], *, none: bool = False) -> bool:
    return all(type(v) is int or (none and v is None) for v in mapping.values())  # JSON keys are strings


class _ReadOnly:
    """Attributes set once, from a record's checked values (slots named after the fields a
    view reads; plain slots rather than dataclasses, which take longer to define than this
    whole module to run)."""

    __slots__ = ()

    def __init__(self, values: Mapping[str, Any]) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only: change a job through core.jobs.JobService")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self.__slots__)})"


class BatchView(_ReadOnly, BatchState):
    """What is shown of one batch of a job."""

    __slots__ = tuple(BATCH_FIELDS)
    if TYPE_CHECKING:
        key: str
        request_file: str
        n_requests: int
        first_custom_id: str
        last_custom_id: str
        status: str
        batch_id: str | None
        output_file_id: str | None
        total: int
        completed: int
        failed: int
        errors: tuple[str, ...]
        timestamps: Mapping[str, int | None]
        last_checked_at: str | None
        last_error: str | None


class SourceView(_ReadOnly):
    """What is shown of one input file of a job."""

    __slots__ = tuple(SOURCE_FIELDS)
    if TYPE_CHECKING:
        index: int
        name: str
        rows_read: int
        rows_kept: int


class JobView(_ReadOnly, JobState):
    """What is shown of a job: read from its registry record, never written back."""

    __slots__ = tuple(JOB_FIELDS)
    if TYPE_CHECKING:
        id: str
        task: str
        provider: str
        model: str
        max_tokens: int
        created_at: str
        name: str | None
        note: str | None
        archived_at: str | None
        parent_job_id: str | None
        retry_of: str | None
        job_dir: str
        output_dir: str
        n_rows: int
        n_requests: int
        sources: tuple[SourceView, ...]
        prompts: Mapping[str, str]
        estimate: Mapping[str, Any]
        batches: tuple[BatchView, ...]
        collected_at: str | None
        result_counts: Mapping[str, int] | None
        output_files: tuple[str, ...]
        usage: Mapping[str, Any] | None


def _batch(record: Any) -> BatchView:
    values = _fields(record, BATCH_FIELDS)
    if not all(isinstance(e, str) for e in values["errors"]) or not _int_values(values["timestamps"], none=True):
        raise _NotAView
    values["errors"] = tuple(values["errors"])
    return BatchView(values)


def read_view(record: Any) -> JobView | None:
    """The view of a registry record, or None when the record must be validated in full
    (something missing, unknown or of another type than the views read)."""
    try:
        values = _fields(record, JOB_FIELDS)
        if values["provider"] not in _PROVIDERS or not all(isinstance(v, str) for v in values["prompts"].values()):
            raise _NotAView
        if values["result_counts"] is not None and not _int_values(values["result_counts"]):
            raise _NotAView
        if not all(isinstance(p, str) for p in values["output_files"]):
            raise _NotAView
        values["sources"] = tuple(SourceView(_fields(s, SOURCE_FIELDS)) for s in values["sources"])
        values["batches"] = tuple(_batch(b) for b in values["batches"])
    except _NotAView:
        return None
    values["output_files"] = tuple(values["output_files"])
    return JobView(values)


def read_views(records: Iterable[Mapping[str, Any]]) -> tuple[list[ShownJob], list[DamagedRecord]]:
    """(jobs to show, damaged records) of registry records, in the records' order: a view of
    each record that reads as one, else the validated job (pydantic loads at the first such
    record), else the damage, as :func:`core.jobs.recovery.read_records` reports it."""
    from core.jobs.recovery import JobRecordDamaged, job_from_record

    shown: list[ShownJob] = []
    damaged: list[DamagedRecord] = []
    for record in records:
        view = read_view(record)
        if view is not None:
            shown.append(view)
            continue
        try:
            shown.append(job_from_record(record))
        except JobRecordDamaged as exc:
            damaged.append(exc.damage)
    return shown, damaged
