"""Command line: ``python -m core`` (installed: ``bdasset``) ``submit | status | download | ...``.

Covers the previous tool's three scripts. Core errors become one-line messages here, at the
boundary; the library itself never prints. Exit codes: 0 done, 1 a one-line ``error:`` reason
(the command could not do what was asked), 2 a usage error (argparse: unknown option, missing
value), 130 interrupted, 141 the output was closed early (``| head``).

Starting is kept fast: pandas, pyarrow, openpyxl, the openai SDK and scikit-learn load only in
the commands that need them (``--help`` and ``status --list-jobs`` need none of them), and
pydantic only where a job is acted on: listing jobs and a finished job's status read the
registry as read-only views (:mod:`core.jobview`). Each command's module is imported only when
that command runs.

- :mod:`~core.cli.parser`: every command, option and help text; the exit codes.
- :mod:`~core.cli.boundary`: :func:`main`: parse, run, turn core errors into ``error:`` lines
  and exit codes.
- :mod:`~core.cli.commands`: :class:`Cli`, what every command gets, and the way to each
  command's module.
- :mod:`~core.cli.submit`: submit. :mod:`~core.cli.monitor`: status, download, retry.
  :mod:`~core.cli.manage`: job, delete, registry. :mod:`~core.cli.interop`: import-legacy,
  export-requests, import-results. :mod:`~core.cli.evaluate`: evaluate, compare, manifest.
  :mod:`~core.cli.demo`: demo.
- :mod:`~core.cli.progress`: progress lines and the live line on a terminal.
  :mod:`~core.cli.views`: the ``--json`` job summary and the job table.
"""

from core.cli.boundary import main
from core.cli.commands import Cli, CommandFailed
from core.cli.parser import EXIT_CODES, build_parser

__all__ = ["EXIT_CODES", "Cli", "CommandFailed", "build_parser", "main"]
