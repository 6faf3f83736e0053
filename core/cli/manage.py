"""Looking after jobs and the registry: ``job`` (show a job; name, note, archive or unarchive
it), ``delete`` (a job's registry entry and local files, after asking) and ``registry`` (the
registry, its backups and job folders; ``--rebuild`` it from them)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from core.cli.commands import CommandFailed
from core.cli.views import job_summary
from core.errors import CoreError
from core.monitoring import input_files, job_progress
from core.vocabulary import count, format_time, status_text, task_short

if TYPE_CHECKING:
    from core.cli.commands import Cli


def job(cli: Cli, args: argparse.Namespace) -> dict[str, Any]:
    """Rename, re-note, archive or unarchive a job, then show it."""
    job_id = cli.service.get(args.job).id
    if args.name is not None or args.note is not None:
        job = cli.service.edit_job(job_id, name=args.name, note=args.note)
        cli.say(f"{job.id}: name {job.name!r}" if job.name else f"{job.id}: no name")
    if args.archive:
        family = cli.service.archive(job_id)
        cli.say(f"Archived {', '.join(j.id for j in family)}: hidden from every job list. "
                f"Undo with: python -m core job --job {job_id} --unarchive")
    elif args.unarchive:
        family = cli.service.unarchive(job_id)
        cli.say(f"Shown again: {', '.join(j.id for j in family)}.")
    job = cli.service.get(job_id)
    cli.say(f"{job.id} · {job.name or '(no name)'} · {task_short(job.task, retry=bool(job.retry_of))} · "
            f"{status_text(job.status)} · created {format_time(job.created_at)}"
            + (f" · archived {format_time(job.archived_at)}" if job.archived_at else ""))
    cli.say(f"  input files: {input_files(job, shown=10)} · {count(job.n_rows, 'row')}")
    cli.say(f"  {job_progress(job).describe()}")
    if job.note:
        cli.say("  note: " + job.note.replace("\n", "\n        "))
    return {"job": job_summary(job)}


def delete(cli: Cli, args: argparse.Namespace) -> dict[str, Any]:
    """Delete a job's registry entry and local files, after showing the plan and asking."""
    plan = cli.service.plan_deletion(args.job)
    for line in plan.lines():
        cli.say(line)
    if not args.yes:
        if args.json:
            raise CoreError("Deleting needs confirmation: add --yes (with --json nothing is asked).")
        if not cli.ask(f"Delete {', '.join(plan.job_ids)} from the registry and this computer? [y/N] "):
            raise CoreError("Not deleted.")
    report = cli.service.delete(plan)
    cli.say(f"Deleted {', '.join(report.deleted)}: registry entry and {count(len(report.removed), 'folder')} "
            "removed; nothing at the provider was deleted.")
    record = {"deleted": report.deleted, "removed": [str(p) for p in report.removed],
              "kept": [str(p) for p in plan.keep], "at_provider": list(plan.at_provider),
              "problems": report.problems}
    if report.problems:
        for problem in report.problems:
            cli.say(problem)
        raise CommandFailed("The jobs were deleted from the registry, but " + "; ".join(report.problems)
                            + ". Remove those folders by hand.")
    return record


def registry(cli: Cli, args: argparse.Namespace) -> dict[str, Any]:
    """Show the registry's state (or ``--rebuild`` it, then reconcile)."""
    if args.rebuild:
        report = cli.service.rebuild_registry()
        note = report.recovery
        cli.say(note.message if note else f"The registry {cli.service.registry.path} lacked no job that "
                "its backups or the job folders hold.")
        found = report.reconcile
        for label, items in (("adopted", found.adopted), ("restored job", found.restored_jobs),
                             ("no longer at the provider", found.unknown_at_provider),
                             ("orphan", found.orphans), ("problem", found.problems)):
            for item in items:
                cli.say(f"{label}: {item}")
        for job_id in dict.fromkeys(item.split("/")[0] for item in report.unsent):
            keys = ", ".join(i.split("/")[1] for i in report.unsent if i.startswith(job_id + "/"))
            cli.say(f"{job_id}: batches {keys} have no provider id (never sent, or no longer listed by the "
                    f"provider); send them with: python -m core submit --resume {job_id}")
        for damage in report.damaged:
            print(f"warning: {damage}", file=cli.err)
        held = len(cli.service.list_jobs(archived=None))
        cli.say(f"The registry now holds {count(held, 'job')}: python -m core status --list-jobs")
        if found.problems and report.unsent:
            raise CoreError("The registry was rebuilt, but some batches are still unknown (see the problems "
                            "above): run python -m core registry --rebuild again once the provider can be reached.")
        return {"rebuild": {"recovery": note.to_record() if note else None, "reconcile": found.__dict__,
                            "unsent": report.unsent, "damaged": [str(d) for d in report.damaged], "jobs": held}}
    state = cli.service.registry.inspect()
    if not state.exists:
        cli.say(f"Registry: {state.path} (missing)")
    elif state.problem:
        cli.say(f"Registry: {state.path} (unreadable: {state.problem})")
    else:
        cli.say(f"Registry: {state.path} ({state.size:,} bytes, {state.jobs} job(s))")
    damaged = [str(d) for d in cli.service.damaged_jobs()] if state.jobs else []
    for item in damaged:
        print(f"warning: {item}", file=cli.err)
    for backup in state.backups or ():
        held = "unreadable" if backup.jobs is None else f"{backup.jobs} job(s)"
        lacking = f", {len(backup.not_in_registry)} not in the registry" if backup.not_in_registry else ""
        cli.say(f"Backup: {backup.path.name}  {backup.modified}  {held}{lacking}")
    if not state.backups:
        cli.say("Backup: none yet (the first is kept at the second write)")
    missing = state.folders_not_in_registry
    lacking = (f", {len(missing)} not in the registry: {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
               if missing else "")
    cli.say(f"Job folders: {state.job_folders} in {state.snapshots_dir}{lacking}")
    if state.temp_files:
        cli.say(f"Temporary files: {state.temp_files} (a dead writer's are removed at the next registry write)")
    if state.last_recovery:
        last = state.last_recovery
        cli.say(f"Last recovery: {last.get('at')} ({last.get('reason')}): {len(last.get('restored') or [])} "
                f"restored, {len(last.get('rebuilt') or [])} rebuilt")
    if state.problem or state.folders_not_in_registry or any(b.not_in_registry for b in state.backups):
        cli.say("Take back what the registry lacks with: python -m core registry --rebuild")
    return {"registry": {
        "path": str(state.path), "exists": state.exists, "size": state.size, "jobs": state.jobs,
        "problem": state.problem, "damaged": damaged,
        "backups": [{"path": str(b.path), "modified": b.modified, "jobs": b.jobs,
                     "not_in_registry": list(b.not_in_registry), "problem": b.problem} for b in state.backups],
        "job_folders": state.job_folders, "folders_not_in_registry": list(state.folders_not_in_registry),
        "temp_files": state.temp_files, "last_recovery": state.last_recovery,
    }}
