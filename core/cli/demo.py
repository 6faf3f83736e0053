"""``demo``: both tasks end to end on the shipped sample data (task 1 on the sample reports,
task 2 on the paragraphs it scored 1), each prepared, submitted, waited for and collected."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from core.cli.views import counts_text, job_summary

if TYPE_CHECKING:
    from core.cli.commands import Cli


def demo(cli: Cli, args: argparse.Namespace) -> dict[str, Any]:
    """Run task 1 on the sample data, then task 2 on the paragraphs it scored 1."""
    from core.inputs import find_input_files
    from core.tasks import TASKS

    settings = cli.service.settings
    task1 = TASKS["investment_activity_classification"]
    first = cli.service.prepare(
        task1.name, inputs=find_input_files(settings.data_dir / task1.input_folder), provider=args.provider
    )
    out1 = _run_to_results(cli, first, "Task 1 on the sample data", args.poll_interval)
    cli.say(f"Paragraphs scored 1: {int((out1.frame['score'] == 1).sum())}")
    second = cli.service.prepare("assetization_features_scoring", parent=out1.job.id, provider=args.provider)
    out2 = _run_to_results(cli, second, "Task 2 on the paragraphs scored 1", args.poll_interval)
    return {"jobs": [job_summary(out1.job), job_summary(out2.job)]}


def _run_to_results(cli: Cli, prep: Any, label: str, poll_interval: float) -> Any:
    """Submit a prepared job, wait for it and collect it; the outcome."""
    cli.say(f"{label}: {prep.summary()}")
    job = cli.service.submit(prep, created_by="demo")
    cli.say(f"Submitted {job.id}; waiting...")
    cli.service.wait([job.id], poll_interval=poll_interval)
    outcome = cli.service.collect(job.id)
    cli.say(f"Results: {counts_text(outcome.counts)}")
    for path in outcome.output_files:
        cli.say(f"  {path}")
    return outcome
