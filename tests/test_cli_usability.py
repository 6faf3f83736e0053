"""Issue 12, item 15 and the command line's start: installable with a console script, help on
every option, documented exit codes, time left while waiting (and a live line on a terminal,
never with --json), and --help / status --list-jobs / one job's status without pandas, pyarrow,
openpyxl, the openai SDK or scikit-learn."""

from __future__ import annotations

import argparse
import io
import json
import os
import select
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from conftest import SAMPLES, make_backend, service_for
from core.cli import EXIT_CODES, build_parser, main
from core.jobs import JobService
from core.local import stop_running

ROOT = Path(__file__).resolve().parent.parent
TASK1 = "investment_activity_classification"
HEAVY = ("pandas", "pyarrow", "openpyxl", "openai", "sklearn", "scipy")


class Terminal(io.StringIO):
    """Output that says it is a terminal (as sys.stdout does in an interactive shell)."""

    def isatty(self) -> bool:
        return True


def run(service: JobService | None, *argv: str, out: io.StringIO | None = None) -> tuple[int, str, str]:
    out, err = out or io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err, service=service)
    return code, out.getvalue(), err.getvalue()


def test_the_package_installs_with_a_bdasset_console_script() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"bdasset": "core.cli:main"}
    assert project["build-system"]["build-backend"] == "setuptools.build_meta"
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["core", "core.*"]  # not pages/, tests/
    runtime = {line.split(">")[0].split("<")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
               if line and not line.startswith("#")} - {"pytest", "playwright"}
    declared = {dep.split(">")[0].split("<")[0] for dep in project["project"]["dependencies"]}
    assert runtime <= declared, runtime - declared


def test_every_option_has_help_and_the_exit_codes_are_documented() -> None:
    missing: list[str] = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        # every option and argument of every parser, and every command in its parent's list
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                listed = {choice.dest: choice.help for choice in action._choices_actions}
                for name, sub in action.choices.items():
                    if not listed.get(name):
                        missing.append(f"{path} {name} (command)")
                    walk(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    parser = build_parser()
    walk(parser, "bdasset")
    assert missing == []
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {"submit", "status", "download", "job", "delete"} <= set(commands)  # the walk saw the commands
    assert "0 done" in EXIT_CODES and "1 error" in EXIT_CODES and "2 usage error" in EXIT_CODES
    # the README says the same as --help (and no longer that every failure is 1)
    readme = (ROOT / "README.md").read_text()
    documented = " ".join(readme[readme.index("Exit codes: "):].split("\n\n")[0].split())
    for code_and_meaning in ("0 done", "1 error", "2 usage error", "130 interrupted", "141 the output was closed"):
        assert code_and_meaning in documented, code_and_meaning
    assert "1 with a one-line reason otherwise" not in readme
    code, out, _ = run(None, "--help")
    assert code == 0 and "exit codes:" in out and "delete" in out and "job" in out
    code, _, err = run(None, "status", "--no-such-option")
    assert code == 2 and "unrecognized arguments" in err
    code, _, err = run(None, "submit", "--max-tokens", "many")
    assert code == 2 and "invalid int value" in err


def test_waiting_shows_the_time_left_and_a_live_line_only_on_a_terminal(tmp_path: Path, settings) -> None:
    with make_backend(tmp_path, baseline_delay_seconds=0.05) as backend:
        service = service_for(backend, settings)
        job = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv"))))
        code, out, err = run(service, "status", "--batch-id", job.id, "--wait", "--poll-interval", "0.2",
                             out=Terminal())
        assert code == 0, err
        assert "\r\x1b[K[" in out and "about " in out and " left" in out  # the live line, with the time left
        lines = [line.rsplit("\r\x1b[K", 1)[-1] for line in out.splitlines()]
        assert any(line.startswith(job.id) and "elapsed" in line for line in lines)
        assert "Finished." in out

        job = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv"))))
        code, out, _ = run(service, "status", "--batch-id", job.id, "--wait", "--poll-interval", "0.2", "--json",
                           out=Terminal())
        assert code == 0 and "\r" not in out and json.loads(out)["jobs"][0]["status"] == "completed"
        code, out, _ = run(service, "status", "--batch-id", job.id, "--wait", "--poll-interval", "0.2")
        assert "\r" not in out and "elapsed" in out  # not a terminal: plain lines
        code, out, _ = run(service, "download", "--batch-id", job.id, out=Terminal())
        assert code == 0 and f"\r\x1b[KCollecting {job.id} (1 of 1 job)" in out and "48 rows (48 succeeded)" in out


def _on_terminal(argv: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str, str]:
    """Run ``python -m core <argv>`` with its stdin and stdout on a pseudo-terminal (as in an
    interactive shell): (exit code, what the terminal received, stderr)."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "core", *argv], cwd=ROOT, env=env, stdin=slave, stdout=slave,
                                stderr=subprocess.PIPE)
    finally:
        os.close(slave)
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
                if not chunk:
                    break
                received += chunk
            elif proc.poll() is not None:
                break  # exited, and nothing is left to read
            elif time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"{argv} did not finish in {timeout} s; the terminal showed: {bytes(received)[-500:]!r}")
        code = proc.wait(timeout=30)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
    finally:
        os.close(master)
        if proc.stderr:
            proc.stderr.close()
    # a terminal turns each "\n" into "\r\n" (onlcr): undo that, keep the live line's own "\r"
    return code, received.decode().replace("\r\n", "\n"), stderr


def test_a_real_terminal_gets_live_progress_and_a_pipe_or_json_never(isolated_data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    env.update(BDASSET_DATA_DIR=str(isolated_data_dir), BDASSET_PROVIDER="local", TERM="xterm", COLUMNS="120")
    try:
        done = subprocess.run([sys.executable, "-m", "core", "submit", "--task", TASK1, "--json"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        job_id = json.loads(done.stdout)["job"]["job_id"]

        code, shown, err = _on_terminal(["status", "--batch-id", job_id, "--wait", "--poll-interval", "0.2"], env)
        assert code == 0, err
        assert "\r\x1b[K[" in shown  # the live line: a bar redrawn in place
        assert "requests answered" in shown and "Finished." in shown and "Traceback" not in err
        lines = [line.rsplit("\r\x1b[K", 1)[-1] for line in shown.splitlines()]
        assert any(line.startswith(job_id) and "elapsed" in line for line in lines)

        code, shown, err = _on_terminal(["status", "--batch-id", job_id, "--wait", "--json"], env)
        assert code == 0, err
        assert "\r" not in shown and json.loads(shown)["jobs"][0]["status"] == "completed"  # --json: never a live line

        piped = subprocess.run([sys.executable, "-m", "core", "status", "--batch-id", job_id, "--wait"], cwd=ROOT,
                               env=env, capture_output=True, text=True, timeout=120)
        assert piped.returncode == 0 and "\r" not in piped.stdout and "elapsed" in piped.stdout  # not a terminal

        code, shown, err = _on_terminal(["download", "--batch-id", job_id], env)
        assert code == 0, err
        assert f"\r\x1b[KCollecting {job_id} (1 of 1 job)" in shown and "48 rows (48 succeeded)" in shown
    finally:
        stop_running(isolated_data_dir / "local_backend")


def _imported_by(argv: list[str], data_dir: Path, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    """Heavy libraries a fresh interpreter imported to run ``python -m core <argv>``."""
    code = ("import sys, contextlib, io\n"
            "from core.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    assert main({argv!r}) == 0\n"
            f"print(','.join(m for m in {heavy!r} if m in sys.modules))")
    env = {**os.environ, "BDASSET_DATA_DIR": str(data_dir), "BDASSET_PROVIDER": "local"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [m for m in done.stdout.strip().split(",") if m]


def test_help_list_and_a_finished_jobs_status_start_without_heavy_libraries(service: JobService,
                                                                            isolated_data_dir: Path) -> None:
    job = service.submit(service.prepare(TASK1, inputs=sorted(SAMPLES.glob("*.csv"))[:1]))
    service.wait([job.id], poll_interval=0.05, timeout=60)
    # listing and a finished job's status read the registry as read-only views (core.jobview):
    # not even pydantic loads
    for argv in (["status", "--list-jobs"], ["status", "--list-jobs", "--json"], ["status", "--batch-id", job.id],
                 ["status", "--batch-id", job.id, "--json"]):
        assert _imported_by(argv, isolated_data_dir, (*HEAVY, "pydantic")) == [], argv
    assert _imported_by(["job", "--job", job.id], isolated_data_dir) == []
    # --help exits through argparse (SystemExit 0) before anything else loads, even pydantic
    env = {**os.environ, "BDASSET_DATA_DIR": str(isolated_data_dir)}
    code = ("import sys, contextlib, io\nfrom core.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    main(['--help'])\n"
            f"print(','.join(m for m in {(*HEAVY, 'pydantic', 'tinydb')!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "", (done.stdout, done.stderr)


def test_a_command_loads_only_its_own_module(isolated_data_dir: Path) -> None:
    # each area's commands live in a module of their own, imported only when one of them runs
    areas = tuple(f"core.cli.{area}" for area in ("submit", "monitor", "manage", "interop", "evaluate", "demo"))
    assert _imported_by(["--help"], isolated_data_dir, areas) == []
    assert _imported_by(["status", "--list-jobs"], isolated_data_dir, areas) == ["core.cli.monitor"]


def test_output_closed_early_ends_quietly_with_141(isolated_data_dir: Path) -> None:
    from core.models import BatchRecord, Job, SourceRecord
    from core.registry import Registry

    with Registry(isolated_data_dir / "registry.json").transaction() as tx:
        for i in range(800):  # a listing larger than a pipe's buffer
            job_id = f"job_20261201_{i // 3600:02d}{i // 60 % 60:02d}{i % 60:02d}_{i:04x}"
            tx.put_job(Job(
                id=job_id, task=TASK1, provider="local", model="m", max_tokens=100, created_at="2026-12-01T00:00:00+00:00",
                name=f"Run {i}", job_dir=str(isolated_data_dir / job_id), output_dir=str(isolated_data_dir / "out"),
                n_rows=10, n_requests=10, prompts={}, estimate={},
                sources=[SourceRecord(index=0, name=f"reports_{i}.csv", rows_read=10, rows_kept=10)],
                batches=[BatchRecord(key="b000", request_file="r.jsonl", n_requests=10, first_custom_id="a",
                                     last_custom_id="b", status="completed", batch_id=f"batch_{i}", completed=10,
                                     output_file_id=f"file-{i}")],  # finished: nothing to ask the provider
            ).to_record())
    env = {**os.environ, "BDASSET_DATA_DIR": str(isolated_data_dir), "BDASSET_PROVIDER": "local"}
    reader = subprocess.Popen([sys.executable, "-m", "core", "status", "--list-jobs"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout is not None and reader.stderr is not None
    assert reader.stdout.readline().startswith(b"JOB ")  # the header, then the reader goes away (| head -1)
    reader.stdout.close()
    assert reader.wait(timeout=120) == 141
    assert reader.stderr.read() == b""  # no traceback
    reader.stderr.close()
    assert not (isolated_data_dir / "local_backend").exists()  # finished jobs: no backend was started to list them
