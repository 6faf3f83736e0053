"""The command line's parser: every command, option and help text, and the exit codes.

Building it imports no command module and nothing heavy: ``--help`` and usage errors stop here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterator

from core.evaluate import DEFAULT_MIN_GROUP, DEFAULT_RESAMPLES, DEFAULT_SEED, MATCH_ON
from core.settings import COLUMN_NAMES, DEFAULT_MAX_TOKENS, PROVIDERS

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_PIPE_CLOSED = 0, 1, 2, 130, 141
EXIT_CODES = ("exit codes: 0 done; 1 error (one line on stderr starting with 'error:'; with --json also "
              '{"ok": false, "error": ...}); 2 usage error (unknown option, missing or invalid value); 130 interrupted; '
              "141 output closed early (piped into head)")


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
    """Every command with its options; ``prog`` is how the user called us."""
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


def _prog() -> str:
    """How the user called us: ``bdasset`` (the console script) or ``python -m core``."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return name if name.startswith("bdasset") else "python -m core"

