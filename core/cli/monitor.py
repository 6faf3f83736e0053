"""Following jobs: ``status`` (the job list, one job's state, waiting with a live line,
cancelling, reconciling with the provider), ``download`` (collecting finished jobs into result
files) and ``retry`` (re-running the rows that did not succeed).

``status --list-jobs`` and a finished job's status come through here: this module imports
nothing heavy (no pandas, pydantic or SDK); the job service loads those only where a job is
acted on.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Sequence

from core.cli.commands import CommandFailed
from core.cli.progress import LiveLine, live_text, progress_line
from core.cli.views import counts_text, job_list_lines, job_summary
from core.errors import CoreError
from core.monitoring import cost_line, job_progress
from core.vocabulary import count, number, status_text

if TYPE_CHECKING:
    from core.cli.commands import Cli
    from core.models import Job


def status(cli: Cli, args: argparse.Namespace) -> dict[str, Any]:
    """Reconcile, list the jobs, cancel, wait for, or show the given jobs (in that order of precedence)."""
    if args.reconcile:
        report = cli.service.reconcile()
        for label, items in (("adopted", report.adopted), ("restored job", report.restored_jobs),
                             ("no longer at the provider", report.unknown_at_provider),
                             ("orphan", report.orphans), ("removed unused upload", report.removed_files),
                             ("problem", report.problems)):
            for item in items:
                cli.say(f"{label}: {item}")
        if not report.anything:
            cli.say("Registry and provider agree.")
        if report.problems and not (report.adopted or report.restored_jobs):
            raise CoreError("; ".join(report.problems))
        return {"reconcile": report.__dict__}
    if args.list_jobs or not args.ids:
        return _list_jobs(cli, archived=args.archived)
    ids = list(dict.fromkeys(args.ids))
    if args.cancel:
        return _cancel(cli, ids, assume_yes=args.yes)
    if args.wait:
        last: dict[str, object] = {}
        live = LiveLine(cli.out) if cli.live else None

        def show(jobs: list[Job]) -> None:
            # a line per change of status or counts, with the time left at that moment; on a
            # terminal, between them, one line redrawn in place at every check
            for job in jobs:
                state = (job.status, job_progress(job))
                if last.get(job.id) != state:
                    if live:
                        live.clear()
                    cli.say(progress_line(job, with_time=True))
                    last[job.id] = state
            if live:
                live.show(live_text(jobs))

        try:
            jobs = cli.service.wait(ids, poll_interval=args.poll_interval, timeout=args.timeout, on_update=show)
        finally:
            if live:
                live.clear()
        unsent = [j for j in jobs if j.status == "submit_failed"]
        unfinished = [j.id for j in jobs if not j.is_finished and j.status != "submit_failed"]
        for job in unsent:
            reason = next((b.last_error for b in job.batches if b.last_error), "no reason recorded")
            cli.say(f"{job.id}: some batches were never submitted ({reason}). "
                    f"Send them with: python -m core submit --resume {job.id}")
        if unfinished:
            waited = f" after {args.timeout:g} s" if args.timeout is not None else ""
            cli.say(f"Stopped waiting{waited}; still running: {', '.join(unfinished)}")
        elif unsent:
            raise CommandFailed(f"{len(unsent)} job(s) could not be submitted: "
                                + ", ".join(j.id for j in unsent) + "; see above.")
        else:
            cli.say(f"Finished. Download with: python -m core download --batch-id {' '.join(j.id for j in jobs)}")
    else:  # a finished job is read without validating it in full (core.jobview); a running one is refreshed
        jobs = cli.service.show(ids)
        for job in jobs:
            cli.say(progress_line(job, with_time=True))
            if job.name or job.note:
                cli.say("  " + " · ".join(filter(None, (job.name, (job.note or "").replace("\n", " ")))))
            cli.say(f"  {cost_line(job)}")
            for batch in job.batches:
                extra = f"  ({batch.last_error})" if batch.last_error else ""
                errors = f"  errors: {'; '.join(batch.errors)}" if batch.errors else ""
                cli.say(f"  {batch.key} {batch.batch_id or '-':<32} {status_text(batch.status):<22} "
                        f"{number(batch.completed)} answered, {number(batch.failed)} failed "
                        f"of {count(batch.n_requests, 'request')}{errors}{extra}")
    return {"jobs": [job_summary(j) for j in jobs]}


def _list_jobs(cli: Cli, *, archived: bool) -> dict[str, Any]:
    """The job table: a header, then one line per job, newest first."""
    cli.service.refresh()
    jobs, damaged = cli.service.scan_views(archived=archived)  # read-only views: no pydantic (core.jobview)
    for notice in cli.service.notices():  # jobs restored after a registry loss
        print(f"notice: {notice}", file=cli.err)
    for damage in damaged:
        print(f"warning: {damage}", file=cli.err)
    if not jobs and not damaged:
        cli.say("No archived jobs." if archived else
                "No jobs yet. Submit one with: python -m core submit --task investment_activity_classification")
    if jobs:
        for line in job_list_lines(jobs):
            cli.say(line)
    hidden = 0 if archived else len(cli.service.registry.list_jobs(lambda r: bool(r.get("archived_at"))))
    if hidden:
        cli.say(f"{count(hidden, 'archived job')} not shown: python -m core status --list-jobs --archived")
    elif archived and jobs:
        cli.say("Show one again with: python -m core job --job ID --unarchive")
    return {"jobs": [job_summary(j) for j in jobs], "damaged": [str(d) for d in damaged],
            "notices": cli.service.notices(), "archived_not_shown": hidden}


def _cancel(cli: Cli, ids: Sequence[str], *, assume_yes: bool) -> dict[str, Any]:
    """Cancel the jobs, after asking unless ``assume_yes``."""
    jobs = [cli.service.get(i) for i in ids]
    if not assume_yes:
        question = f"Cancel {', '.join(j.id for j in jobs)}? Finished answers are kept. [y/N] "
        if not cli.ask(question):
            raise CoreError("Not cancelled.")
    cancelled = [cli.service.cancel(j.id) for j in jobs]
    for job in cancelled:
        cli.say(f"{job.id}: {status_text(job.status)} (finished answers are kept; download them when it is "
                "cancelled)")
    return {"jobs": [job_summary(j) for j in cancelled]}


def download(cli: Cli, args: argparse.Namespace) -> dict[str, Any]:
    """Collect the finished jobs' results into CSV files; the others are reported."""
    collected: list[dict[str, Any]] = []
    problems: list[str] = []
    cli.service.refresh(args.ids)
    wanted = list(dict.fromkeys(args.ids))
    live = LiveLine(cli.out) if cli.live else None
    for number_, job_id in enumerate(wanted, start=1):
        if live:  # collecting a large job takes seconds: say which one is under way
            live.show(f"Collecting {job_id} ({number_} of {count(len(wanted), 'job')})…")
        try:
            outcome = cli.service.collect(job_id, output_dir=args.output_dir, column_names=args.column_names)
        except CoreError as exc:
            problems.append(str(exc))
            outcome = None
        finally:
            if live:
                live.clear()
        if outcome is None:
            cli.say(f"{job_id}: {problems[-1]}")
            continue
        job = outcome.job
        cli.say(f"{job.id}: {count(len(outcome.frame), 'row')} ({counts_text(outcome.counts)})")
        for path in outcome.output_files:
            cli.say(f"  {path}")
        collected.append({**job_summary(job), "raw_files": [str(p) for p in outcome.raw_files]})
    if problems and not collected:
        raise CommandFailed("; ".join(problems))
    result = {"jobs": collected}
    if problems:
        result["errors"] = problems
    return result


def retry(cli: Cli, args: argparse.Namespace) -> dict[str, Any]:
    """Re-run the rows of a job that did not succeed, as a new job."""
    child = cli.service.retry(args.job, model=args.model, max_tokens=args.max_tokens, provider=args.provider)
    if child is None:
        cli.say(f"Every row of {cli.service.get(args.job).id} has succeeded; nothing to re-run.")
        return {"job": None, "nothing_to_retry": True}
    cli.say(f"Re-running {child.n_rows:,} rows of {child.retry_of} as job {child.id} "
            f"({child.n_requests:,} requests, provider {child.provider}, model {child.model}, max tokens {child.max_tokens}).")
    cli.say(f"When it is done, download {child.retry_of} again: its results then include these answers.")
    return {"job": job_summary(child)}
