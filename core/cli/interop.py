"""Work that did not start here or does not end here (:mod:`core.interop`): ``import-legacy``
(the previous tool's jobs), ``export-requests`` (a job's request files for a run elsewhere) and
``import-results`` (the output files of such a run, brought back and collected)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from core.cli.commands import CommandFailed
from core.cli.views import counts_text, job_summary
from core.errors import CoreError

if TYPE_CHECKING:
    from core.cli.commands import Cli


def import_legacy(cli: Cli, args: argparse.Namespace) -> dict[str, Any]:
    """Bring the previous tool's jobs into the registry."""
    from core.interop.legacy import importer

    report = importer.import_legacy(cli.service, args.paths)
    if not report.jobs:
        raise CoreError("No metadata file (results/batch_jobs/*.json) found in the given folders.")
    for entry in report.jobs:
        head = entry.batch_id or entry.metadata_file
        cli.say(f"{head}: " + (f"job {entry.job_id}" if entry.job_id else "not imported"))
        for item in entry.brought_in:
            cli.say(f"  brought in: {item}")
        for item in entry.not_brought_in:
            cli.say(f"  not brought in: {item}")
    for problem in report.problems:
        cli.say(f"problem: {problem}")
    new = report.imported
    ids = " ".join(j.job_id for j in new if j.job_id)
    cli.say(f"{len(new)} job(s) imported. Check them with: python -m core status --batch-id {ids}; "
            f"collect them with: python -m core download --batch-id {ids}" if new else "No new job imported.")
    if not new and not any(j.already for j in report.jobs):
        raise CommandFailed(f"None of the {len(report.jobs)} metadata file(s) could be imported; see above.")
    return {"import": report.to_record()}


def export_requests(cli: Cli, args: argparse.Namespace) -> dict[str, Any]:
    """Write a job's request files into a folder, for a run elsewhere."""
    from core.interop import files

    written = files.export_requests(cli.service, args.job, args.folder, model=args.model)
    for item in written:
        cli.say(f"{item.batch_key}: {item.n_requests:,} requests in {item.path}")
    return {"files": [{"batch_key": f.batch_key, "path": str(f.path), "n_requests": f.n_requests} for f in written]}


def import_results(cli: Cli, args: argparse.Namespace) -> dict[str, Any]:
    """Bring output and error files into a job; collect it once every batch has results."""
    from core.interop import files

    outcome = files.import_results(cli.service, args.job, args.files)
    for item in outcome.batches:
        cli.say(f"{item.batch_key}: {item.answered:,} answered, {item.failed:,} failed, {item.missing:,} without a "
                f"line ({item.added:,} new, {item.replaced:,} replaced)")
    if not outcome.changed:
        cli.say("Nothing new: these lines were imported before.")
    result = {"files": outcome.files, "batches": [b.__dict__ for b in outcome.batches]}
    job = outcome.job
    if not job.is_finished:  # other batches have no results yet: collecting waits for them
        open_keys = ", ".join(f"{b.key} ({b.status})" for b in job.batches if not b.is_terminal)
        cli.say(f"{job.id}: batches {open_keys} have no results yet; import their files too, or send them with: "
                f"python -m core submit --resume {job.id}")
        return {**result, "job": job_summary(job)}
    collected = cli.service.collect(job.id, output_dir=args.output_dir, column_names=args.column_names)
    cli.say(f"{collected.job.id}: {len(collected.frame):,} rows ({counts_text(collected.counts)})")
    for path in collected.output_files:
        cli.say(f"  {path}")
    return {**result, "job": job_summary(collected.job)}
