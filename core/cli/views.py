"""How jobs are written out: the machine-readable summary ``--json`` prints, the aligned job
table of ``status --list-jobs``, and a result's row counts in words."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from core.monitoring import input_files, job_progress
from core.vocabulary import format_time, number, status_text, task_short

if TYPE_CHECKING:
    from core.jobview import ShownJob

LIST_HEADER = ("JOB", "CREATED (UTC)", "TASK", "STATUS", "ROWS", "ANSWERED", "MODEL", "NAME · INPUT FILES")


def job_list_lines(jobs: Sequence[ShownJob]) -> list[str]:
    """``status --list-jobs``: a header and one aligned line per job (id, creation date, task,
    status, rows, answered share, model, then the name and input files)."""
    rows = [LIST_HEADER] + [
        (job.id, format_time(job.created_at).removesuffix(" UTC"), task_short(job.task, retry=bool(job.retry_of)),
         status_text(job.status), number(job.n_rows), job_progress(job).percent(), job.model,
         " · ".join(filter(None, (_one_line(job.name), input_files(job)))))
        for job in jobs
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(LIST_HEADER) - 1)]
    right = {4, 5}  # numbers align right
    return ["  ".join([*(r[i].rjust(w) if i in right else r[i].ljust(w) for i, w in enumerate(widths)), r[-1]])
            .rstrip() for r in rows]


def _one_line(text: str | None, limit: int = 40) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def counts_text(counts: dict[str, int]) -> str:
    """``19,960 succeeded, 40 failed`` (the parts that are not zero), or ``no rows``."""
    return ", ".join(f"{number(n)} {s}" for s, n in counts.items() if n) or "no rows"


def job_summary(job: ShownJob) -> dict[str, Any]:
    """The machine-readable view of a job used by ``--json``."""
    done, failed, total = job.progress()
    return {
        "job_id": job.id,
        "name": job.name,
        "note": job.note,
        "archived_at": job.archived_at,
        "input_files": [s.name for s in job.sources],
        "progress": job_progress(job).to_record(),
        "task": job.task,
        "status": job.status,
        "provider": job.provider,
        "model": job.model,
        "created_at": job.created_at,
        "parent_job_id": job.parent_job_id,
        "retry_of": job.retry_of,
        "n_rows": job.n_rows,
        "n_requests": total,
        "answered": done,
        "failed": failed,
        "batches": [
            {"key": b.key, "batch_id": b.batch_id, "status": b.status, "n_requests": b.n_requests,
             "completed": b.completed, "failed": b.failed, "errors": b.errors, "last_error": b.last_error}
            for b in job.batches
        ],
        "collected_at": job.collected_at,
        "row_counts": job.result_counts,
        "output_dir": job.output_dir,
        "output_files": job.output_files,
        "estimate": job.estimate,
        "usage": job.usage,
    }
