"""``submit``: read and check the inputs, estimate the cost, and submit the job (or only try,
with ``--dry-run``; or record it unsent, with ``--hold``; or send what was not sent, with
``--resume``). The inputs and tasks load here, when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.cli.views import job_summary
from core.errors import CoreError
from core.prompts import load_prompts
from core.vocabulary import count, status_text

if TYPE_CHECKING:
    from core.cli.commands import Cli


def submit(cli: Cli, args: argparse.Namespace) -> dict[str, Any]:
    """Validate the inputs, estimate the cost, and submit the job (or try it, hold it, or resume it)."""
    if args.resume:
        job = cli.service.resume_submission(args.resume)
        cli.say(f"Job {job.id}: {status_text(job.status)}.")
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
            inputs = find_input_files(args.input_dir or cli.service.settings.data_dir / task.input_folder)
        if args.sheet or args.text_column:
            inputs = [InputSource(path, sheet=args.sheet, text_column=args.text_column) for path in inputs]
    elif args.input_file or args.input_dir or args.sheet or args.text_column:
        raise CoreError(f"Task {task.name} runs on a task-1 job: give --batch-id JOB (or --from-results DIR) "
                        "instead of input files (and without --sheet or --text-column).")
    prompts = load_prompts(task.name, system_path=args.system_prompt, user_path=args.user_prompt)
    try:
        prep = cli.service.prepare(
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
        how = ("Give --sheet SHEET (a name, or a number from 1) and --text-column COLUMN." if exc.in_workbook
               else "Give the column with --text-column COLUMN.")
        raise ChoiceNeeded(exc.file_name, f"{exc.problem} {how}", in_workbook=exc.in_workbook) from None
    prep.name, prep.note = name, note
    for source in prep.sources:
        dropped = f", {len(source.dropped)} dropped" if source.dropped else ""
        cli.say(f"{excerpt(source.name)}: {source.rows_read} rows read, {source.rows_kept} kept{dropped}")
        for item in source.dropped[:10]:
            cli.say(f"  row {item['row']}: {item['reason']}")
        if len(source.dropped) > 10:
            cli.say(f"  ... and {len(source.dropped) - 10} more dropped rows")
        for note in source.notes:
            cli.say(f"  note: {note}")
        for warning in source.warnings:
            cli.say(f"  warning: {warning}")
    for warning in prep.warnings:
        cli.say(warning)
    cli.say(f"Provider {prep.provider}, model {prep.model}. {prep.summary()}")
    labeler = _labeler_lines(cli, prep)
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
        cli.say("Dry run: nothing was submitted.")
        return {**result, "dry_run": True}
    if args.hold:
        job = cli.service.submit(prep, created_by="cli", send=False)
        cli.say(f"Recorded job {job.id} without sending it ({len(job.batches)} batch file(s)).")
        cli.say(f"Export its requests with: python -m core export-requests --job {job.id} --dir DIR")
        cli.say(f"or send them with: python -m core submit --resume {job.id}")
        return {**result, "held": True, "job": job_summary(job)}
    job = cli.service.submit(prep, created_by="cli")
    cli.say(f"Submitted job {job.id}{f' ({job.name})' if job.name else ''}, {count(len(job.batches), 'batch')}:")
    for batch in job.batches:
        cli.say(f"  {batch.key}  {batch.batch_id}  {status_text(batch.status)}  {count(batch.n_requests, 'request')}")
    cli.say(f"Check it with: python -m core status --batch-id {job.id} --wait")
    return {**result, "job": job_summary(job)}


def _labeler_lines(cli: Cli, prep: Any) -> dict[str, Any]:
    """Say when the rules baseline stands in for the embedding labeler, and, for examples
    from a labels file, their cross-validated agreement (before anything is sent)."""
    from core.local.labeler import BASELINE_MODEL, expected_agreement, fallback_notice, labeler_cache_dir

    out: dict[str, Any] = {}
    notice = fallback_notice() if prep.provider == "local" and prep.model == BASELINE_MODEL else None
    if notice and cli.service.settings.local_labeler != "rules" and not cli.service.settings.local_chat_url:
        cli.say(f"notice: {notice}")
        out["notice"] = notice
    examples = prep.examples
    if examples is not None and examples.source != "built-in":
        n = len(examples.texts(prep.task.name))
        cli.say(f"Cross-validating the labeler on the {n:,} labelled paragraphs (each is embedded once and "
                "cached for the job)...")
        agreement = expected_agreement(examples, prep.task.name,
                                       cache_dir=labeler_cache_dir(cli.service.settings.local_state_dir))
        for line in agreement.summary_lines():
            cli.say(line)
        out["expected_agreement"] = agreement.to_record()
    return out
