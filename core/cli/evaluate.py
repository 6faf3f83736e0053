"""``evaluate`` (a job's labels against human labels), ``compare`` (jobs against each other)
and ``manifest`` (a job's methods record), over :mod:`core.evaluate`. scikit-learn and scipy
load only when one of these runs (seconds of import time)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.cli.commands import Cli

LISTED_IN_JSON = 50  # paragraphs per list in evaluate/compare --json; the saved evaluation holds all


def evaluate(cli: Cli, args: argparse.Namespace) -> dict[str, Any]:
    """A job's labels against human labels (saved with the job unless ``--no-save``)."""
    from core.evaluate import run_evaluation

    evaluation = run_evaluation(cli.service, args.job, args.labels, label_columns=args.label_columns,
                                match_on=args.match_on, min_group=args.min_group, seed=args.seed,
                                n_resamples=args.resamples, save=args.save)
    for line in evaluation.summary_lines():
        cli.say(line)
    return {"evaluation": evaluation.to_record(max_listed=LISTED_IN_JSON)}


def compare(cli: Cli, args: argparse.Namespace) -> dict[str, Any]:
    """Agreement between two or more jobs over the same paragraphs."""
    from core.evaluate import run_comparison

    comparison = run_comparison(cli.service, args.jobs, match_on=args.match_on, seed=args.seed,
                                n_resamples=args.resamples)
    for line in comparison.summary_lines():
        cli.say(line)
    return {"comparison": comparison.to_record(max_listed=LISTED_IN_JSON)}


def manifest(cli: Cli, args: argparse.Namespace) -> dict[str, Any]:
    """A job's methods record (collected first if it is finished and not yet collected)."""
    from core.evaluate import build_manifest, original_job

    job = original_job(cli.service, args.job)
    if job.is_finished and job.collected_at is None:  # row counts and answering models come from collecting
        cli.service.collect(job.id)
    record = build_manifest(cli.service, job.id)
    markdown = record.to_markdown()
    cli.say(markdown)
    return {"manifest": record.to_record(), **({"markdown": markdown} if args.markdown else {})}
