"""What every command gets, and the way to each command: :class:`Cli` holds the job service,
the output streams, the question asker and whether a live line may be drawn, and hands each
command to the module of its area, imported only when that command runs (so ``--help``,
``status --list-jobs`` and one job's status never load what submit or evaluate need).

Command modules: :mod:`~core.cli.submit` (submit), :mod:`~core.cli.monitor` (status,
download, retry), :mod:`~core.cli.manage` (job, delete, registry), :mod:`~core.cli.interop`
(import-legacy, export-requests, import-results), :mod:`~core.cli.evaluate` (evaluate,
compare, manifest) and :mod:`~core.cli.demo` (demo). Each is ``command(cli, args)`` and
returns the record ``--json`` prints.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Callable, TextIO

from core.errors import CoreError

if TYPE_CHECKING:
    from core.jobs import JobService


class CommandFailed(CoreError):
    """Some of several ids failed; the others were handled."""


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
        """One line of the command's output (swallowed with --json)."""
        print(text, file=self.out)

    # ----- submit (core.cli.submit) ----------------------------------------------------------
    def submit(self, args: argparse.Namespace) -> dict[str, Any]:
        """Validate inputs, estimate cost, submit (or hold, or only try) a job."""
        from core.cli.submit import submit

        return submit(self, args)

    # ----- following jobs (core.cli.monitor) ---------------------------------------------------
    def status(self, args: argparse.Namespace) -> dict[str, Any]:
        """List jobs; show, wait for or cancel some; reconcile with the provider."""
        from core.cli.monitor import status

        return status(self, args)

    def download(self, args: argparse.Namespace) -> dict[str, Any]:
        """Collect finished jobs into result files."""
        from core.cli.monitor import download

        return download(self, args)

    def retry(self, args: argparse.Namespace) -> dict[str, Any]:
        """Re-run the rows of a job that did not succeed."""
        from core.cli.monitor import retry

        return retry(self, args)

    # ----- looking after jobs and the registry (core.cli.manage) -------------------------------
    def job(self, args: argparse.Namespace) -> dict[str, Any]:
        """Show a job; name, note, archive or unarchive it."""
        from core.cli.manage import job

        return job(self, args)

    def delete(self, args: argparse.Namespace) -> dict[str, Any]:
        """Delete a job's registry entry and local files."""
        from core.cli.manage import delete

        return delete(self, args)

    def registry(self, args: argparse.Namespace) -> dict[str, Any]:
        """Show the registry, its backups and job folders, or rebuild it."""
        from core.cli.manage import registry

        return registry(self, args)

    # ----- the previous tool's jobs, and files in and out (core.cli.interop) -------------------
    def import_legacy(self, args: argparse.Namespace) -> dict[str, Any]:
        """Bring the previous tool's jobs into the registry."""
        from core.cli.interop import import_legacy

        return import_legacy(self, args)

    def export_requests(self, args: argparse.Namespace) -> dict[str, Any]:
        """Write a job's request files for a run elsewhere."""
        from core.cli.interop import export_requests

        return export_requests(self, args)

    def import_results(self, args: argparse.Namespace) -> dict[str, Any]:
        """Bring the output files of a run elsewhere into a job, and collect it."""
        from core.cli.interop import import_results

        return import_results(self, args)

    # ----- evaluate, compare, manifest (core.cli.evaluate) -------------------------------------
    def evaluate(self, args: argparse.Namespace) -> dict[str, Any]:
        """A job's labels against human labels."""
        from core.cli.evaluate import evaluate

        return evaluate(self, args)

    def compare(self, args: argparse.Namespace) -> dict[str, Any]:
        """Agreement between two or more jobs."""
        from core.cli.evaluate import compare

        return compare(self, args)

    def manifest(self, args: argparse.Namespace) -> dict[str, Any]:
        """The methods record of a job."""
        from core.cli.evaluate import manifest

        return manifest(self, args)

    # ----- demo (core.cli.demo) ----------------------------------------------------------------
    def demo(self, args: argparse.Namespace) -> dict[str, Any]:
        """Both tasks end to end on the shipped sample data."""
        from core.cli.demo import demo

        return demo(self, args)
