"""Command line: ``python -m core`` (installed: ``bdasset``) ``submit | status | download | ...``.

Covers the previous tool's three scripts. Core errors become one-line messages here, at the
boundary; the library itself never prints. Exit codes: 0 done, 1 a one-line ``error:`` reason
(the command could not do what was asked), 2 a usage error (argparse: unknown option, missing
value), 130 interrupted, 141 the output was closed early (``| head``).

Starting is kept fast: pandas, pyarrow, openpyxl, the openai SDK and scikit-learn load only in
the commands that need them (``--help`` and ``status --list-jobs`` need none of them), and
pydantic only where a job is acted on: listing jobs and a finished job's status read the
registry as read-only views (:mod:`core.jobview`).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence, TextIO

import orjson

from core.errors import CoreError
from core.evaluate import DEFAULT_MIN_GROUP, DEFAULT_RESAMPLES, DEFAULT_SEED, MATCH_ON
from core.monitoring import Progress, cost_line, input_files, job_progress, timing
from core.prompts import load_prompts
from core.settings import COLUMN_NAMES, DEFAULT_MAX_TOKENS, PROVIDERS, load_settings
from core.vocabulary import PART_WORDS, count, format_duration, format_time, number, status_text, task_short

if TYPE_CHECKING:
    from core.jobs import JobService
    from core.jobview import ShownJob
    from core.models import Job

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_PIPE_CLOSED = 0, 1, 2, 130, 141
EXIT_CODES = ("exit codes: 0 done; 1 error (one line on stderr starting with 'error:'; with --json also "
              '{"ok": false, "error": ...}); 2 usage error (unknown option, missing or invalid value); 130 interrupted; '
              "141 output closed early (piped into head)")
LISTED_IN_JSON = 50  # paragraphs per list in evaluate/compare --json; the saved evaluation holds all


class CommandFailed(CoreError):
    """Some of several ids failed; the others were handled."""


class _TaskNames:
    """The task names as argparse ``choices``, read from core.tasks only when ``--task`` is
    checked or a command's own help lists them: core.tasks brings pydantic, which ``--help``
    and usage errors do without."""

    def __contains__(self, name: object) -> bool:
        from core.tasks import TASKS

        return name in TASKS

    def __iter__(self) -> Iterator[str]:
        from core.tasks import TASKS

        return iter(TASKS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="Label investor-report paragraphs through the OpenAI Batch API or the embedded local backend.",
        epilog=EXIT_CODES,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print one machine-readable JSON object")
        p.add_argument("--provider", choices=PROVIDERS, help="default: openai when a key is configured, else local")

    submit = sub.add_parser("submit", help="validate inputs, estimate cost, submit a job")
    common(submit)
    submit.add_argument("--task", choices=_TaskNames(), metavar="TASK", help="which labelling task: %(choices)s")
    source = submit.add_mutually_exclusive_group()
    source.add_argument("--input-dir", type=Path, help="folder of CSV/XLSX files (task 1; default: the task's input folder)")
    source.add_argument("--input-file", type=Path, action="append", help="an input file; repeat for several")
    submit.add_argument("--sheet", metavar="SHEET",
                        help="the sheet of .xlsx inputs to read, by name or number from 1 (default: the first sheet "
                             "with a paragraph_text column, or with --text-column)")
    submit.add_argument("--text-column", metavar="COLUMN",
                        help="the input column that holds the paragraphs (default: paragraph_text)")
    submit.add_argument("--batch-id", "--job-id", dest="parent", metavar="ID",
                        help="task 2: the completed task-1 job (its job id or any of its batch ids)")
    submit.add_argument("--model", help="model name (default depends on the provider)")
    submit.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS, help="answer token limit per request")
    submit.add_argument("--system-prompt", type=Path, help="custom system prompt file")
    submit.add_argument("--user-prompt", type=Path, help="custom user prompt template file (must contain {text})")
    submit.add_argument("--max-requests-per-file", type=int, default=None,
                        help="split batches above this many requests (default and most: the provider's limit, "
                             "OpenAI 50,000, Azure and Anthropic 100,000)")
    submit.add_argument("--no-dedupe", dest="dedupe", action="store_false",
                        help="send repeated paragraphs once each instead of once in all")
    submit.add_argument("--enqueued-token-limit", type=int, metavar="N",
                        help="the model's batch queue limit; larger jobs are sent as batches in turn")
    submit.add_argument("--examples", type=Path, metavar="FILE",
                        help="local embedding labeler: learn from this human labels file (the format evaluate reads); "
                             "prints its cross-validated agreement before submitting")
    submit.add_argument("--dry-run", action="store_true", help="validate and estimate only; submit nothing")
    submit.add_argument("--resume", metavar="JOB", help="send the batches of JOB that were not submitted")
    submit.add_argument("--name", help="a name for the job, shown in every job list (change it later with: job --name)")
    submit.add_argument("--note", help="a note kept with the job (change it later with: job --note)")
    submit.add_argument("--from-results", type=Path, metavar="DIR",
                        help="task 2: a task-1 result folder of the previous tool (CSVs with paragraph_text and score)")
    submit.add_argument("--hold", action="store_true",
                        help="record the job and write its request files, send nothing (export them with "
                             "export-requests; send them later with submit --resume JOB)")

    status = sub.add_parser("status", help="check, wait for or cancel jobs; list jobs")
    common(status)
    status.add_argument("--batch-id", "--job-id", dest="ids", nargs="+", metavar="ID", help="job ids or batch ids")
    status.add_argument("--list-jobs", action="store_true",
                        help="list the jobs (the default without ids): name, input files, rows, progress, dates")
    status.add_argument("--archived", action="store_true", help="with --list-jobs: list the archived jobs instead")
    status.add_argument("--wait", action="store_true",
                        help="poll until the jobs are finished, with the time left (a live line on a terminal)")
    status.add_argument("--poll-interval", type=float, default=30.0, help="seconds between checks with --wait")
    status.add_argument("--timeout", type=float, help="stop waiting after this many seconds")
    status.add_argument("--cancel", action="store_true", help="cancel the jobs (finished answers are kept)")
    status.add_argument("--yes", action="store_true", help="do not ask before cancelling")
    status.add_argument("--reconcile", action="store_true",
                        help="compare with the provider's batch list: adopt lost batches, flag vanished ones")

    retry = sub.add_parser("retry", help="re-run only the rows of a job that did not succeed")
    common(retry)
    retry.add_argument("--job", "--batch-id", dest="job", required=True, metavar="ID", help="the job (or a batch id of it)")
    retry.add_argument("--model", help="another model for the retry")
    retry.add_argument("--max-tokens", type=int, help="a higher answer token limit (for truncated rows)")
    # --provider (from common): run the retry on another provider; the original's results show
    # which provider answered each row

    download = sub.add_parser("download", help="collect results of finished jobs into CSV files")
    common(download)
    download.add_argument("--batch-id", "--job-id", dest="ids", nargs="+", required=True, metavar="ID",
                          help="job ids or batch ids of finished jobs")
    download.add_argument("--output-dir", type=Path, help="write results here instead of the task's default folder")
    download.add_argument("--column-names", choices=COLUMN_NAMES,
                          help="legacy: task-2 files with the previous tool's column names (default: BDASSET_COLUMN_NAMES)")

    legacy = sub.add_parser("import-legacy", help="bring the previous tool's jobs (results/batch_jobs/*.json) into the registry")
    common(legacy)
    legacy.add_argument("paths", nargs="+", type=Path, metavar="PATH",
                        help="the previous tool's checkout, or its results/ and data/processed/ folders")

    export = sub.add_parser("export-requests", help="write a job's request files for a run elsewhere (vllm run-batch, OpenAI's page)")
    common(export)
    export.add_argument("--job", "--batch-id", dest="job", required=True, metavar="ID", help="the job (or a batch id of it)")
    export.add_argument("--dir", dest="folder", required=True, type=Path, metavar="DIR", help="write the files here")
    export.add_argument("--model", help="put this model name in every request (one the other server serves)")

    results = sub.add_parser("import-results", help="bring output and error files of a run elsewhere into a job, and collect it")
    common(results)
    results.add_argument("--job", "--batch-id", dest="job", required=True, metavar="ID", help="the job (or a batch id of it)")
    results.add_argument("files", nargs="+", type=Path, metavar="FILE", help="output and error files (JSONL)")
    results.add_argument("--output-dir", type=Path, help="write results here instead of the task's default folder")
    results.add_argument("--column-names", choices=COLUMN_NAMES,
                         help="legacy: task-2 files with the previous tool's column names (default: BDASSET_COLUMN_NAMES)")

    evaluate = sub.add_parser("evaluate", help="a job's labels against human labels: kappa, alpha, F1 with intervals")
    common(evaluate)
    evaluate.add_argument("--job", "--batch-id", dest="job", required=True, metavar="ID", help="the job (or a batch id of it)")
    evaluate.add_argument("--labels", type=Path, required=True, metavar="FILE",
                          help="CSV/XLSX: paragraph_text, a label column per answer (e.g. score), optional annotator, pdf_file_name")
    evaluate.add_argument("--label-column", dest="label_columns", action="extend", nargs="+", metavar="COL",
                          help="the file's label column(s), COL or ANSWER=COL (default: columns named like the answers)")
    evaluate.add_argument("--match-on", choices=MATCH_ON, default="text", help="match paragraphs on text, or text and report")
    evaluate.add_argument("--min-group", type=int, default=DEFAULT_MIN_GROUP, metavar="N",
                          help="smallest investor or report group shown in the breakdowns")
    evaluate.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, metavar="N", help="bootstrap resamples")
    evaluate.add_argument("--seed", type=int, default=DEFAULT_SEED, help="bootstrap seed")
    evaluate.add_argument("--no-save", dest="save", action="store_false", help="do not save the evaluation with the job")

    compare = sub.add_parser("compare", help="agreement between two or more jobs over the same paragraphs")
    common(compare)
    compare.add_argument("--job", "--batch-id", dest="jobs", action="append", required=True, metavar="ID",
                         help="a job to compare; repeat for each (two or more)")
    compare.add_argument("--match-on", choices=MATCH_ON, default="text", help="match paragraphs on text, or text and report")
    compare.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES, metavar="N", help="bootstrap resamples")
    compare.add_argument("--seed", type=int, default=DEFAULT_SEED, help="bootstrap seed")

    manifest = sub.add_parser("manifest", help="the methods record of a job (JSON, or a Markdown paragraph)")
    common(manifest)
    manifest.add_argument("--job", "--batch-id", dest="job", required=True, metavar="ID", help="the job (or a batch id of it)")
    manifest.add_argument("--markdown", action="store_true", help="print the Markdown paragraph (with --json: add it to the object)")

    demo = sub.add_parser("demo", help="run both tasks end to end on the shipped sample data")
    common(demo)
    demo.add_argument("--poll-interval", type=float, default=1.0, help="seconds between checks while waiting")

    job = sub.add_parser("job", help="show a job; name it, note it, archive or unarchive it")
    common(job)
    job.add_argument("--job", "--batch-id", dest="job", required=True, metavar="ID", help="the job (or a batch id of it)")
    job.add_argument("--name", help="the job's new name (an empty one removes it)")
    job.add_argument("--note", help="the job's new note (an empty one removes it)")
    shelf = job.add_mutually_exclusive_group()
    shelf.add_argument("--archive", action="store_true",
                       help="hide the job (and its re-runs) from every job list; undo with --unarchive")
    shelf.add_argument("--unarchive", action="store_true", help="show an archived job in the job lists again")

    delete = sub.add_parser("delete", help="delete a job's registry entry and local files (asks first; nothing "
                                           "at the provider is deleted)")
    common(delete)
    delete.add_argument("--job", "--batch-id", dest="job", required=True, metavar="ID", help="the job (or a batch id of it)")
    delete.add_argument("--yes", action="store_true", help="do not ask before deleting (needed without a terminal)")

    registry = sub.add_parser("registry", help="show the job registry, its backups and job folders; --rebuild it")
    common(registry)
    registry.add_argument("--rebuild", action="store_true",
                          help="take back every job the backups and job folders hold (an unreadable registry file "
                               "is set aside, never deleted), then reconcile with the provider")
    return parser


class Cli:
    """Runs one parsed command; ``out`` and ``err`` are injectable for tests."""

    def __init__(self, service: JobService, *, out: TextIO, err: TextIO, ask: Callable[[str], bool],
                 live: bool = False) -> None:
        """``live``: ``out`` is a terminal (and not --json): long waits redraw one progress line."""
        self.service = service
        self.out = out
        self.err = err
        self.ask = ask
        self.live = live

    def say(self, text: str = "") -> None:
        print(text, file=self.out)

    # ----- submit ------------------------------------------------------------------------
    def submit(self, args: argparse.Namespace) -> dict[str, Any]:
        if args.resume:
            job = self.service.resume_submission(args.resume)
            self.say(f"Job {job.id}: {status_text(job.status)}.")
            return {"job": job_summary(job)}
        if not args.task:
            raise CoreError("submit needs --task (or --resume JOB).")
        from core.inputs import ChoiceNeeded, InputSource, excerpt, find_input_files
        from core.jobs.manage import clean_name, clean_note
        from core.tasks import get_task

        name, note = clean_name(args.name), clean_note(args.note)  # a bad name fails before any work
        task = get_task(args.task)
        inputs: list[Path | InputSource] = []
        if task.parent_task is None:
            if args.input_file:
                inputs = list(args.input_file)
            else:
                inputs = find_input_files(args.input_dir or self.service.settings.data_dir / task.input_folder)
            if args.sheet or args.text_column:
                inputs = [InputSource(path, sheet=args.sheet, text_column=args.text_column) for path in inputs]
        elif args.input_file or args.input_dir or args.sheet or args.text_column:
            raise CoreError(f"Task {task.name} runs on a task-1 job: give --batch-id JOB (or --from-results DIR) "
                            "instead of input files (and without --sheet or --text-column).")
        prompts = load_prompts(task.name, system_path=args.system_prompt, user_path=args.user_prompt)
        try:
            prep = self.service.prepare(
                task.name,
                inputs=inputs,
                parent=args.parent,
                model=args.model,
                max_tokens=args.max_tokens,
                prompts=prompts,
                provider=args.provider,
                dedupe=args.dedupe,
                enqueued_token_limit=args.enqueued_token_limit,
                max_requests_per_file=args.max_requests_per_file,
                examples=args.examples,
                parent_results=args.from_results,
            )
        except ChoiceNeeded as exc:  # core says what to choose; here is how, on the command line
            raise ChoiceNeeded(exc.file_name, f"{exc.problem} Choose with --sheet SHEET (a name, or a number "
                               "from 1) and --text-column COLUMN.") from None
        prep.name, prep.note = name, note
        for source in prep.sources:
            dropped = f", {len(source.dropped)} dropped" if source.dropped else ""
            self.say(f"{excerpt(source.name)}: {source.rows_read} rows read, {source.rows_kept} kept{dropped}")
            for item in source.dropped[:10]:
                self.say(f"  row {item['row']}: {item['reason']}")
            if len(source.dropped) > 10:
                self.say(f"  ... and {len(source.dropped) - 10} more dropped rows")
            for note in source.notes:
                self.say(f"  note: {note}")
            for warning in source.warnings:
                self.say(f"  warning: {warning}")
        for warning in prep.warnings:
            self.say(warning)
        self.say(f"Provider {prep.provider}, model {prep.model}. {prep.summary()}")
        labeler = self._labeler_lines(prep)
        result: dict[str, Any] = {
            "task": task.name,
            "provider": prep.provider,
            "model": prep.model,
            "n_rows": prep.n_rows,
            "n_requests": prep.n_requests,
            "duplicates_saved": prep.duplicates_saved,
            "n_batches": len(prep.chunks),
            "estimate": prep.estimate.to_record(),
            "inputs": [s.model_dump() for s in prep.sources],
            **labeler,
        }
        if args.dry_run:
            self.say("Dry run: nothing was submitted.")
            return {**result, "dry_run": True}
        if args.hold:
            job = self.service.submit(prep, created_by="cli", send=False)
            self.say(f"Recorded job {job.id} without sending it ({len(job.batches)} batch file(s)).")
            self.say(f"Export its requests with: python -m core export-requests --job {job.id} --dir DIR")
            self.say(f"or send them with: python -m core submit --resume {job.id}")
            return {**result, "held": True, "job": job_summary(job)}
        job = self.service.submit(prep, created_by="cli")
        self.say(f"Submitted job {job.id}{f' ({job.name})' if job.name else ''}, {count(len(job.batches), 'batch')}:")
        for batch in job.batches:
            self.say(f"  {batch.key}  {batch.batch_id}  {status_text(batch.status)}  {count(batch.n_requests, 'request')}")
        self.say(f"Check it with: python -m core status --batch-id {job.id} --wait")
        return {**result, "job": job_summary(job)}

    def _labeler_lines(self, prep: Any) -> dict[str, Any]:
        """Say when the rules baseline stands in for the embedding labeler, and, for examples
        from a labels file, their cross-validated agreement (before anything is sent)."""
        from core.local.labeler import BASELINE_MODEL, expected_agreement, fallback_notice, labeler_cache_dir

        out: dict[str, Any] = {}
        notice = fallback_notice() if prep.provider == "local" and prep.model == BASELINE_MODEL else None
        if notice and self.service.settings.local_labeler != "rules" and not self.service.settings.local_chat_url:
            self.say(f"notice: {notice}")
            out["notice"] = notice
        examples = prep.examples
        if examples is not None and examples.source != "built-in":
            n = len(examples.texts(prep.task.name))
            self.say(f"Cross-validating the labeler on the {n:,} labelled paragraphs (each is embedded once and "
                     "cached for the job)...")
            agreement = expected_agreement(examples, prep.task.name,
                                           cache_dir=labeler_cache_dir(self.service.settings.local_state_dir))
            for line in agreement.summary_lines():
                self.say(line)
            out["expected_agreement"] = agreement.to_record()
        return out

    # ----- status --------------------------------------------------------------------------
    def status(self, args: argparse.Namespace) -> dict[str, Any]:
        if args.reconcile:
            report = self.service.reconcile()
            for label, items in (("adopted", report.adopted), ("restored job", report.restored_jobs),
                                 ("no longer at the provider", report.unknown_at_provider),
                                 ("orphan", report.orphans), ("removed unused upload", report.removed_files),
                                 ("problem", report.problems)):
                for item in items:
                    self.say(f"{label}: {item}")
            if not report.anything:
                self.say("Registry and provider agree.")
            if report.problems and not (report.adopted or report.restored_jobs):
                raise CoreError("; ".join(report.problems))
            return {"reconcile": report.__dict__}
        if args.list_jobs or not args.ids:
            return self._list_jobs(archived=args.archived)
        ids = list(dict.fromkeys(args.ids))
        if args.cancel:
            return self._cancel(ids, assume_yes=args.yes)
        if args.wait:
            last: dict[str, object] = {}
            live = _LiveLine(self.out) if self.live else None

            def show(jobs: list[Job]) -> None:
                # a line per change of status or counts, with the time left at that moment; on a
                # terminal, between them, one line redrawn in place at every check
                for job in jobs:
                    state = (job.status, job_progress(job))
                    if last.get(job.id) != state:
                        if live:
                            live.clear()
                        self.say(progress_line(job, with_time=True))
                        last[job.id] = state
                if live:
                    live.show(live_text(jobs))

            try:
                jobs = self.service.wait(ids, poll_interval=args.poll_interval, timeout=args.timeout, on_update=show)
            finally:
                if live:
                    live.clear()
            unsent = [j for j in jobs if j.status == "submit_failed"]
            unfinished = [j.id for j in jobs if not j.is_finished and j.status != "submit_failed"]
            for job in unsent:
                reason = next((b.last_error for b in job.batches if b.last_error), "no reason recorded")
                self.say(f"{job.id}: some batches were never submitted ({reason}). "
                         f"Send them with: python -m core submit --resume {job.id}")
            if unfinished:
                waited = f" after {args.timeout:g} s" if args.timeout is not None else ""
                self.say(f"Stopped waiting{waited}; still running: {', '.join(unfinished)}")
            elif unsent:
                raise CommandFailed(f"{len(unsent)} job(s) could not be submitted: "
                                    + ", ".join(j.id for j in unsent) + "; see above.")
            else:
                self.say(f"Finished. Download with: python -m core download --batch-id {' '.join(j.id for j in jobs)}")
        else:  # a finished job is read without validating it in full (core.jobview); a running one is refreshed
            jobs = self.service.show(ids)
            for job in jobs:
                self.say(progress_line(job, with_time=True))
                if job.name or job.note:
                    self.say("  " + " · ".join(filter(None, (job.name, (job.note or "").replace("\n", " ")))))
                self.say(f"  {cost_line(job)}")
                for batch in job.batches:
                    extra = f"  ({batch.last_error})" if batch.last_error else ""
                    errors = f"  errors: {'; '.join(batch.errors)}" if batch.errors else ""
                    self.say(f"  {batch.key} {batch.batch_id or '-':<32} {status_text(batch.status):<22} "
                             f"{number(batch.completed)} answered, {number(batch.failed)} failed "
                             f"of {count(batch.n_requests, 'request')}{errors}{extra}")
        return {"jobs": [job_summary(j) for j in jobs]}

    def _list_jobs(self, *, archived: bool) -> dict[str, Any]:
        """The job table: a header, then one line per job, newest first."""
        self.service.refresh()
        jobs, damaged = self.service.scan_views(archived=archived)  # read-only views: no pydantic (core.jobview)
        for notice in self.service.notices():  # jobs restored after a registry loss
            print(f"notice: {notice}", file=self.err)
        for damage in damaged:
            print(f"warning: {damage}", file=self.err)
        if not jobs and not damaged:
            self.say("No archived jobs." if archived else
                     "No jobs yet. Submit one with: python -m core submit --task investment_activity_classification")
        if jobs:
            for line in job_list_lines(jobs):
                self.say(line)
        hidden = 0 if archived else len(self.service.registry.list_jobs(lambda r: bool(r.get("archived_at"))))
        if hidden:
            self.say(f"{count(hidden, 'archived job')} not shown: python -m core status --list-jobs --archived")
        elif archived and jobs:
            self.say("Show one again with: python -m core job --job ID --unarchive")
        return {"jobs": [job_summary(j) for j in jobs], "damaged": [str(d) for d in damaged],
                "notices": self.service.notices(), "archived_not_shown": hidden}

    def _cancel(self, ids: Sequence[str], *, assume_yes: bool) -> dict[str, Any]:
        jobs = [self.service.get(i) for i in ids]
        if not assume_yes:
            question = f"Cancel {', '.join(j.id for j in jobs)}? Finished answers are kept. [y/N] "
            if not self.ask(question):
                raise CoreError("Not cancelled.")
        cancelled = [self.service.cancel(j.id) for j in jobs]
        for job in cancelled:
            self.say(f"{job.id}: {status_text(job.status)} (finished answers are kept; download them when it is "
                     "cancelled)")
        return {"jobs": [job_summary(j) for j in cancelled]}

    # ----- job: show, name, note, archive; delete (core.jobs.manage) --------------------------
    def job(self, args: argparse.Namespace) -> dict[str, Any]:
        job_id = self.service.get(args.job).id
        if args.name is not None or args.note is not None:
            job = self.service.edit_job(job_id, name=args.name, note=args.note)
            self.say(f"{job.id}: name {job.name!r}" if job.name else f"{job.id}: no name")
        if args.archive:
            family = self.service.archive(job_id)
            self.say(f"Archived {', '.join(j.id for j in family)}: hidden from every job list. "
                     f"Undo with: python -m core job --job {job_id} --unarchive")
        elif args.unarchive:
            family = self.service.unarchive(job_id)
            self.say(f"Shown again: {', '.join(j.id for j in family)}.")
        job = self.service.get(job_id)
        self.say(f"{job.id} · {job.name or '(no name)'} · {task_short(job.task, retry=bool(job.retry_of))} · "
                 f"{status_text(job.status)} · created {format_time(job.created_at)}"
                 + (f" · archived {format_time(job.archived_at)}" if job.archived_at else ""))
        self.say(f"  input files: {input_files(job, shown=10)} · {count(job.n_rows, 'row')}")
        self.say(f"  {job_progress(job).describe()}")
        if job.note:
            self.say("  note: " + job.note.replace("\n", "\n        "))
        return {"job": job_summary(job)}

    def delete(self, args: argparse.Namespace) -> dict[str, Any]:
        plan = self.service.plan_deletion(args.job)
        for line in plan.lines():
            self.say(line)
        if not args.yes:
            if args.json:
                raise CoreError("Deleting needs confirmation: add --yes (with --json nothing is asked).")
            if not self.ask(f"Delete {', '.join(plan.job_ids)} from the registry and this computer? [y/N] "):
                raise CoreError("Not deleted.")
        report = self.service.delete(plan)
        self.say(f"Deleted {', '.join(report.deleted)}: registry entry and {count(len(report.removed), 'folder')} "
                 "removed; nothing at the provider was deleted.")
        record = {"deleted": report.deleted, "removed": [str(p) for p in report.removed],
                  "kept": [str(p) for p in plan.keep], "at_provider": list(plan.at_provider),
                  "problems": report.problems}
        if report.problems:
            for problem in report.problems:
                self.say(problem)
            raise CommandFailed("The jobs were deleted from the registry, but " + "; ".join(report.problems)
                                + ". Remove those folders by hand.")
        return record

    # ----- download --------------------------------------------------------------------------
    def download(self, args: argparse.Namespace) -> dict[str, Any]:
        collected: list[dict[str, Any]] = []
        problems: list[str] = []
        self.service.refresh(args.ids)
        wanted = list(dict.fromkeys(args.ids))
        live = _LiveLine(self.out) if self.live else None
        for number_, job_id in enumerate(wanted, start=1):
            if live:  # collecting a large job takes seconds: say which one is under way
                live.show(f"Collecting {job_id} ({number_} of {count(len(wanted), 'job')})…")
            try:
                outcome = self.service.collect(job_id, output_dir=args.output_dir, column_names=args.column_names)
            except CoreError as exc:
                problems.append(str(exc))
                outcome = None
            finally:
                if live:
                    live.clear()
            if outcome is None:
                self.say(f"{job_id}: {problems[-1]}")
                continue
            job = outcome.job
            self.say(f"{job.id}: {count(len(outcome.frame), 'row')} ({_counts_text(outcome.counts)})")
            for path in outcome.output_files:
                self.say(f"  {path}")
            collected.append({**job_summary(job), "raw_files": [str(p) for p in outcome.raw_files]})
        if problems and not collected:
            raise CommandFailed("; ".join(problems))
        result = {"jobs": collected}
        if problems:
            result["errors"] = problems
        return result

    # ----- the previous tool's jobs, and files in and out (core.interop) ---------------------
    def import_legacy(self, args: argparse.Namespace) -> dict[str, Any]:
        from core.interop.legacy import import_legacy

        report = import_legacy(self.service, args.paths)
        if not report.jobs:
            raise CoreError("No metadata file (results/batch_jobs/*.json) found in the given folders.")
        for entry in report.jobs:
            head = entry.batch_id or entry.metadata_file
            self.say(f"{head}: " + (f"job {entry.job_id}" if entry.job_id else "not imported"))
            for item in entry.brought_in:
                self.say(f"  brought in: {item}")
            for item in entry.not_brought_in:
                self.say(f"  not brought in: {item}")
        for problem in report.problems:
            self.say(f"problem: {problem}")
        new = report.imported
        ids = " ".join(j.job_id for j in new if j.job_id)
        self.say(f"{len(new)} job(s) imported. Check them with: python -m core status --batch-id {ids}; "
                 f"collect them with: python -m core download --batch-id {ids}" if new else "No new job imported.")
        if not new and not any(j.already for j in report.jobs):
            raise CommandFailed(f"None of the {len(report.jobs)} metadata file(s) could be imported; see above.")
        return {"import": report.to_record()}

    def export_requests(self, args: argparse.Namespace) -> dict[str, Any]:
        from core.interop.files import export_requests

        written = export_requests(self.service, args.job, args.folder, model=args.model)
        for item in written:
            self.say(f"{item.batch_key}: {item.n_requests:,} requests in {item.path}")
        return {"files": [{"batch_key": f.batch_key, "path": str(f.path), "n_requests": f.n_requests} for f in written]}

    def import_results(self, args: argparse.Namespace) -> dict[str, Any]:
        from core.interop.files import import_results

        outcome = import_results(self.service, args.job, args.files)
        for item in outcome.batches:
            self.say(f"{item.batch_key}: {item.answered:,} answered, {item.failed:,} failed, {item.missing:,} without a "
                     f"line ({item.added:,} new, {item.replaced:,} replaced)")
        if not outcome.changed:
            self.say("Nothing new: these lines were imported before.")
        result = {"files": outcome.files, "batches": [b.__dict__ for b in outcome.batches]}
        job = outcome.job
        if not job.is_finished:  # other batches have no results yet: collecting waits for them
            open_keys = ", ".join(f"{b.key} ({b.status})" for b in job.batches if not b.is_terminal)
            self.say(f"{job.id}: batches {open_keys} have no results yet; import their files too, or send them with: "
                     f"python -m core submit --resume {job.id}")
            return {**result, "job": job_summary(job)}
        collected = self.service.collect(job.id, output_dir=args.output_dir, column_names=args.column_names)
        self.say(f"{collected.job.id}: {len(collected.frame):,} rows ({_counts_text(collected.counts)})")
        for path in collected.output_files:
            self.say(f"  {path}")
        return {**result, "job": job_summary(collected.job)}

    # ----- evaluate, compare, manifest (core.evaluate) ---------------------------------------
    # scikit-learn and scipy load only when one of these runs (seconds of import time)
    def evaluate(self, args: argparse.Namespace) -> dict[str, Any]:
        from core.evaluate import run_evaluation

        evaluation = run_evaluation(self.service, args.job, args.labels, label_columns=args.label_columns,
                                    match_on=args.match_on, min_group=args.min_group, seed=args.seed,
                                    n_resamples=args.resamples, save=args.save)
        for line in evaluation.summary_lines():
            self.say(line)
        return {"evaluation": evaluation.to_record(max_listed=LISTED_IN_JSON)}

    def compare(self, args: argparse.Namespace) -> dict[str, Any]:
        from core.evaluate import run_comparison

        comparison = run_comparison(self.service, args.jobs, match_on=args.match_on, seed=args.seed,
                                    n_resamples=args.resamples)
        for line in comparison.summary_lines():
            self.say(line)
        return {"comparison": comparison.to_record(max_listed=LISTED_IN_JSON)}

    def manifest(self, args: argparse.Namespace) -> dict[str, Any]:
        from core.evaluate import build_manifest, original_job

        job = original_job(self.service, args.job)
        if job.is_finished and job.collected_at is None:  # row counts and answering models come from collecting
            self.service.collect(job.id)
        record = build_manifest(self.service, job.id)
        markdown = record.to_markdown()
        self.say(markdown)
        return {"manifest": record.to_record(), **({"markdown": markdown} if args.markdown else {})}

    # ----- retry -----------------------------------------------------------------------------
    def retry(self, args: argparse.Namespace) -> dict[str, Any]:
        child = self.service.retry(args.job, model=args.model, max_tokens=args.max_tokens, provider=args.provider)
        if child is None:
            self.say(f"Every row of {self.service.get(args.job).id} has succeeded; nothing to re-run.")
            return {"job": None, "nothing_to_retry": True}
        self.say(f"Re-running {child.n_rows:,} rows of {child.retry_of} as job {child.id} "
                 f"({child.n_requests:,} requests, provider {child.provider}, model {child.model}, max tokens {child.max_tokens}).")
        self.say(f"When it is done, download {child.retry_of} again: its results then include these answers.")
        return {"job": job_summary(child)}

    # ----- registry --------------------------------------------------------------------------
    def registry(self, args: argparse.Namespace) -> dict[str, Any]:
        if args.rebuild:
            report = self.service.rebuild_registry()
            note = report.recovery
            self.say(note.message if note else f"The registry {self.service.registry.path} lacked no job that "
                     "its backups or the job folders hold.")
            found = report.reconcile
            for label, items in (("adopted", found.adopted), ("restored job", found.restored_jobs),
                                 ("no longer at the provider", found.unknown_at_provider),
                                 ("orphan", found.orphans), ("problem", found.problems)):
                for item in items:
                    self.say(f"{label}: {item}")
            for job_id in dict.fromkeys(item.split("/")[0] for item in report.unsent):
                keys = ", ".join(i.split("/")[1] for i in report.unsent if i.startswith(job_id + "/"))
                self.say(f"{job_id}: batches {keys} have no provider id (never sent, or no longer listed by the "
                         f"provider); send them with: python -m core submit --resume {job_id}")
            for damage in report.damaged:
                print(f"warning: {damage}", file=self.err)
            held = len(self.service.list_jobs(archived=None))
            self.say(f"The registry now holds {count(held, 'job')}: python -m core status --list-jobs")
            if found.problems and report.unsent:
                raise CoreError("The registry was rebuilt, but some batches are still unknown (see the problems "
                                "above): run python -m core registry --rebuild again once the provider can be reached.")
            return {"rebuild": {"recovery": note.to_record() if note else None, "reconcile": found.__dict__,
                                "unsent": report.unsent, "damaged": [str(d) for d in report.damaged], "jobs": held}}
        state = self.service.registry.inspect()
        if not state.exists:
            self.say(f"Registry: {state.path} (missing)")
        elif state.problem:
            self.say(f"Registry: {state.path} (unreadable: {state.problem})")
        else:
            self.say(f"Registry: {state.path} ({state.size:,} bytes, {state.jobs} job(s))")
        damaged = [str(d) for d in self.service.damaged_jobs()] if state.jobs else []
        for item in damaged:
            print(f"warning: {item}", file=self.err)
        for backup in state.backups or ():
            held = "unreadable" if backup.jobs is None else f"{backup.jobs} job(s)"
            lacking = f", {len(backup.not_in_registry)} not in the registry" if backup.not_in_registry else ""
            self.say(f"Backup: {backup.path.name}  {backup.modified}  {held}{lacking}")
        if not state.backups:
            self.say("Backup: none yet (the first is kept at the second write)")
        missing = state.folders_not_in_registry
        lacking = (f", {len(missing)} not in the registry: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
                   if missing else "")
        self.say(f"Job folders: {state.job_folders} in {state.snapshots_dir}{lacking}")
        if state.temp_files:
            self.say(f"Temporary files: {state.temp_files} (a dead writer's are removed at the next registry write)")
        if state.last_recovery:
            last = state.last_recovery
            self.say(f"Last recovery: {last.get('at')} ({last.get('reason')}): {len(last.get('restored') or [])} "
                     f"restored, {len(last.get('rebuilt') or [])} rebuilt")
        if state.problem or state.folders_not_in_registry or any(b.not_in_registry for b in state.backups):
            self.say("Take back what the registry lacks with: python -m core registry --rebuild")
        return {"registry": {
            "path": str(state.path), "exists": state.exists, "size": state.size, "jobs": state.jobs,
            "problem": state.problem, "damaged": damaged,
            "backups": [{"path": str(b.path), "modified": b.modified, "jobs": b.jobs,
                         "not_in_registry": list(b.not_in_registry), "problem": b.problem} for b in state.backups],
            "job_folders": state.job_folders, "folders_not_in_registry": list(state.folders_not_in_registry),
            "temp_files": state.temp_files, "last_recovery": state.last_recovery,
        }}

    # ----- demo ------------------------------------------------------------------------------
    def demo(self, args: argparse.Namespace) -> dict[str, Any]:
        from core.inputs import find_input_files
        from core.tasks import TASKS

        settings = self.service.settings
        task1 = TASKS["investment_activity_classification"]
        first = self.service.prepare(
            task1.name, inputs=find_input_files(settings.data_dir / task1.input_folder), provider=args.provider
        )
        out1 = self._run_to_results(first, "Task 1 on the sample data", args.poll_interval)
        self.say(f"Paragraphs scored 1: {int((out1.frame['score'] == 1).sum())}")
        second = self.service.prepare("assetization_features_scoring", parent=out1.job.id, provider=args.provider)
        out2 = self._run_to_results(second, "Task 2 on the paragraphs scored 1", args.poll_interval)
        return {"jobs": [job_summary(out1.job), job_summary(out2.job)]}

    def _run_to_results(self, prep: Any, label: str, poll_interval: float) -> Any:
        self.say(f"{label}: {prep.summary()}")
        job = self.service.submit(prep, created_by="demo")
        self.say(f"Submitted {job.id}; waiting...")
        self.service.wait([job.id], poll_interval=poll_interval)
        outcome = self.service.collect(job.id)
        self.say(f"Results: {_counts_text(outcome.counts)}")
        for path in outcome.output_files:
            self.say(f"  {path}")
        return outcome


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{number(n)} {s}" for s, n in counts.items() if n) or "no rows"


def progress_line(job: ShownJob, *, with_time: bool = False) -> str:
    """``job_...  cancelled  6,835 of 20,000 rows answered (34%), 13,165 cancelled or expired``;
    with ``with_time``, the elapsed time and, while it runs, the time left."""
    line = f"{job.id}  {status_text(job.status):<22} {job_progress(job).describe()}"
    if with_time:
        line += f" · {timing(job).describe()}"
    return line


def live_text(jobs: Sequence[ShownJob], width: int = 24) -> str:
    """The line redrawn on a terminal while waiting: a bar of the answered share over all the
    jobs waited for, the parts, and the time left of the slowest."""
    progress = [job_progress(j) for j in jobs]
    total = sum(p.total for p in progress)
    parts = {name: sum(getattr(p, name) for p in progress) for name in PART_WORDS}
    summed = Progress(unit=progress[0].unit if len({p.unit for p in progress}) == 1 else "item", total=total, **parts)
    filled = int(width * summed.fraction)
    lefts = [t.left_seconds for t in map(timing, jobs) if t.left_seconds is not None]
    left = f" · about {format_duration(max(lefts))} left" if lefts else ""
    return f"[{'#' * filled}{'.' * (width - filled)}] {summed.describe()}{left}"


class _LiveLine:
    """One line redrawn in place on a terminal (carriage return and erase-line)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = False

    def show(self, text: str) -> None:
        width = max(20, shutil.get_terminal_size((100, 20)).columns - 1)
        self.stream.write("\r\x1b[K" + (text if len(text) <= width else text[: width - 1] + "…"))
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False


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


def _ask_tty(question: str) -> bool:
    if not sys.stdin or not sys.stdin.isatty():
        raise CoreError("This needs confirmation: add --yes when running without a terminal.")
    return input(question).strip().lower() in ("y", "yes")


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty()) and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


def _prog() -> str:
    """How the user called us: ``bdasset`` (the console script) or ``python -m core``."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return name if name.startswith("bdasset") else "python -m core"


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None,
         service: JobService | None = None) -> int:
    """Run one command; the exit code (see :data:`EXIT_CODES`)."""
    try:
        return _run(argv, out=out or sys.stdout, err=err or sys.stderr, service=service)
    except BrokenPipeError:
        # the reader went away (``bdasset status --list-jobs | head``): stop without a traceback,
        # as a command ended by SIGPIPE does; the interpreter must not flush into the closed pipe
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE_CLOSED


def _run(argv: Sequence[str] | None, *, out: TextIO, err: TextIO, service: JobService | None) -> int:
    parser = build_parser()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    quiet = io.StringIO() if args.json else out  # --json prints only the JSON object
    try:
        if service is None:
            from core.jobs import JobService

            settings = load_settings(provider=args.provider)
            service = JobService(settings=settings)
            service.tidy()
        cli = Cli(service, out=quiet, err=err, ask=_ask_tty, live=not args.json and _is_terminal(out))
        result = getattr(cli, args.command.replace("-", "_"))(args)
    except CoreError as exc:
        if args.json:
            out.write(orjson.dumps({"ok": False, "error": str(exc)}).decode() + "\n")
        print(f"error: {exc}", file=err)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("Interrupted. Submitted jobs keep running; check them with: python -m core status --list-jobs", file=err)
        return EXIT_INTERRUPTED
    if args.command not in ("status", "registry"):  # those two print them with their listing
        for notice in service.notices():
            print(f"notice: {notice}", file=err)
    if args.json:
        out.write(orjson.dumps({"ok": True, **result}, option=orjson.OPT_INDENT_2).decode() + "\n")
    return EXIT_OK

