"""The command line's boundary: parse, run one command, and turn what comes back into output
and an exit code. Core errors become one ``error:`` line here (and ``{"ok": false, ...}`` with
``--json``); an interrupt and a reader that went away end quietly with their own codes.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from typing import TYPE_CHECKING, Sequence, TextIO

import orjson

from core.cli.commands import Cli
from core.cli.parser import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_PIPE_CLOSED, build_parser
from core.errors import CoreError
from core.settings import load_settings

if TYPE_CHECKING:
    from core.jobs import JobService


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None,
         service: JobService | None = None) -> int:
    """Run one command; the exit code (see :data:`core.cli.parser.EXIT_CODES`)."""
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


def _ask_tty(question: str) -> bool:
    if not sys.stdin or not sys.stdin.isatty():
        raise CoreError("This needs confirmation: add --yes when running without a terminal.")
    return input(question).strip().lower() in ("y", "yes")


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty()) and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False
