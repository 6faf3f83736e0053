"""An imported job's rows, settled: checked against the custom_ids its answers carry and, when
they do not all fit, rebuilt from the request file whose custom_ids hold them (among the copies
kept at import) or from the input file cut under the answers' job name. Runs at import when the
previous tool downloaded the answers, else at download; never matches by position.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from core.csvout import write_csv
from core.inputs import excerpt
from core.interop.errors import LegacyLayoutError, RowsUnresolved
from core.interop.files import IMPORTED_FILE_PREFIX, ResultSource, result_custom_ids
from core.interop.legacy.rows import (
    BATCH_KEY,
    PreviousInput,
    RequestLines,
    Rows,
    answers_prefix,
    parse_request_file,
    prefix_shape,
    previous_input,
    rows_from_input,
    rows_from_request_file,
)
from core.jobs.collect import RAW_FOLDER, raw_path
from core.jobs.common import ROW_FILE, SNAPSHOT_FILE, output_may_lag
from core.models import Job
from core.safefs import atomic_write, contained, private_dir

if TYPE_CHECKING:
    from core.jobs.service import JobService

REQUESTS_FOLDER = "legacy_requests"  # copies of the request files that fit, in the job folder


def _candidates(job: Job) -> list[RequestLines]:
    folder = Path(job.job_dir) / REQUESTS_FOLDER
    found = []
    for copy in (job.imported or {}).get("candidates") or []:
        path = contained(folder, str(copy.get("file")))
        if path.is_file():
            found.append(parse_request_file(path, path.read_bytes()))
    return found


def _input_table(job: Job, layout: str) -> PreviousInput:
    """The previous tool's rows from the input file(s) found at import."""
    inputs = (job.imported or {}).get("inputs") or []
    wanted = inputs[:1] if layout == "chunked" else inputs
    missing = [item["name"] for item in wanted if not item.get("path")]
    if not wanted or missing:
        raise RowsUnresolved(f"the input file {', '.join(missing) or '(none recorded)'} was not found")
    try:
        return previous_input([(item["name"], Path(item["path"])) for item in wanted], task=job.task,
                              combined=layout == "combined")
    except LegacyLayoutError as exc:
        raise RowsUnresolved(str(exc)) from None


def resolve_rows(job: Job, reported: set[str], template: str | None) -> Rows | None:
    """The job's rows, from the request file whose custom_ids hold every reported one (or the
    only one that fits), else from the input file cut under the answers' job name. None when
    there is no answer yet to choose between several request files."""
    total = (job.imported or {}).get("total_paragraphs")
    names = [item["name"] for item in (job.imported or {}).get("inputs") or []]
    candidates = _candidates(job)
    chosen = None
    if reported:
        chosen = next((c for c in candidates if reported <= set(c.ids)), None)
    elif len(candidates) == 1:
        chosen = candidates[0]
    if chosen is not None:
        shape = prefix_shape(chosen.prefix)
        try:
            table = _input_table(job, shape[0]) if shape else None
        except RowsUnresolved:
            table = None
        return rows_from_request_file(chosen, csv_names=names, template=template, table=table)
    if not reported:
        if candidates:
            return None
        raise RowsUnresolved("no request file fits and there is no answer yet to tell which rows were sent")
    prefix = answers_prefix(reported)
    if prefix is None:
        raise RowsUnresolved("the answers carry custom_ids of several job names, or not the previous tool's "
                             "<job name>_<row index>")
    shape = prefix_shape(prefix)
    if shape is None or (shape[0] == "chunked" and [Path(n).stem for n in names[:1]] != [shape[1]]):
        raise RowsUnresolved(f"the answers' job name {excerpt(prefix, 80)!r} does not name the recorded input file")
    rows = rows_from_input(_input_table(job, shape[0]), prefix=prefix, total=total)
    strangers = reported - set(rows.frame["custom_id"])
    if strangers:
        raise RowsUnresolved(f"{len(strangers):,} answers (e.g. {excerpt(min(strangers), 80)!r}) name rows the "
                             "input file does not have")
    return rows


def apply_rows(job: Job, rows: Rows) -> str:
    """Write the row file and record where the rows came from (in ``job``, not yet saved);
    returns that, for the report."""
    frame = rows.frame
    job_dir = Path(job.job_dir)
    write_csv(frame, job_dir / ROW_FILE)
    info = dict(job.imported or {})
    info.update(rows="settled", rows_from=rows.source, notes=list(rows.notes))
    job.imported = info
    job.n_rows = job.n_requests = len(frame)
    batch = job.batch(BATCH_KEY)
    batch.n_requests = len(frame)
    batch.first_custom_id, batch.last_custom_id = str(frame["custom_id"].iloc[0]), str(frame["custom_id"].iloc[-1])
    batch.request_file = str(rows.request_file) if rows.request_file is not None else ""
    counts = frame.groupby("source_index").size()
    # only the rows sent are known (not how many the file had): both counts are those
    job.sources = [s.model_copy(update={"rows_read": int(counts.get(s.index, 0)), "rows_kept": int(counts.get(s.index, 0))})
                   for s in job.sources]
    return f"rows: {len(frame):,} from the {rows.source}" + (f"; {'; '.join(rows.notes)}" if rows.notes else "")


def _reported_ids(service: JobService, job: Job) -> set[str]:
    """The custom_ids the job's output and error files carry, downloading them (to where
    collecting looks for them) when they are not here yet."""
    raw_dir = private_dir(Path(job.job_dir) / RAW_FOLDER)
    sources = []
    for batch in job.batches:
        if output_may_lag(batch):
            continue  # collecting says so
        for kind, file_id in (("output", batch.output_file_id), ("errors", batch.error_file_id)):
            if not file_id:
                continue
            path = raw_path(raw_dir, batch, kind)
            if not path.exists():
                if file_id.startswith(IMPORTED_FILE_PREFIX):
                    continue
                data = service._call(job.provider, lambda c, f=file_id: c.download(f))
                atomic_write(path, data)
            sources.append(ResultSource(str(path), path.read_bytes()))
    return result_custom_ids(sources)


def settle_rows(service: JobService, job: Job, *, reported: set[str] | None = None) -> Job:
    """Make sure an imported job's rows are the ones its answers were for: the row file holds
    every custom_id the answers carry (``reported``; default: those of its output and error
    files, downloaded if needed), else it is rebuilt from the request file or the input file
    they point to. Raises RowsUnresolved with what did not fit; never matches by position."""
    info = job.imported
    if info is None:
        return job
    if reported is None:
        if not job.is_finished:
            return job  # collecting says it is not ready
        reported = _reported_ids(service, job)
    if info.get("rows") == "settled":
        requests = set(service.rows(job)["request_id"])
        if reported <= requests:
            return job
    try:
        rows = resolve_rows(job, reported, info.get("user_template"))
    except RowsUnresolved as exc:
        raise RowsUnresolved(f"Job {job.id} (the previous tool's batch {info.get('batch_id')}): {exc}; nothing was "
                             "matched by position.") from None
    if rows is None:
        names = ", ".join(str(c.get("file")) for c in info.get("candidates") or [])
        raise RowsUnresolved(f"Job {job.id} (the previous tool's batch {info.get('batch_id')}): several request files "
                             f"fit ({names}) and no answer tells which one was sent.")
    done = apply_rows(job, rows)
    job.imported = {**(job.imported or {}), "brought_in": [*(job.imported or {}).get("brought_in", []), done]}
    atomic_write(Path(job.job_dir) / SNAPSHOT_FILE, orjson.dumps(job.to_record(), option=orjson.OPT_INDENT_2))
    service._update(job, "imported", "batches", "n_rows", "n_requests", "sources")
    return service.get(job.id)
