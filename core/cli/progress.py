"""Progress on the terminal: a job's one-line progress with its time, and the line redrawn in
place while waiting or collecting (a bar over all the jobs waited for, and the time left)."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING, Sequence, TextIO

from core.monitoring import Progress, job_progress, timing
from core.vocabulary import PART_WORDS, format_duration, status_text

if TYPE_CHECKING:
    from core.jobview import ShownJob


def progress_line(job: ShownJob, *, with_time: bool = False) -> str:
    """``job_...  cancelled  6,835 of 20,000 rows answered (34%), 13,165 cancelled or expired``;
    with ``with_time``, the elapsed time and, while it runs, the time left."""
    line = f"{job.id}  {status_text(job.status):<22} {job_progress(job).describe()}"
    if with_time:
        line += f" · {timing(job).describe()}"
    return line


def live_text(jobs: Sequence[ShownJob], width: int = 24) -> str:
    """The line redrawn on a terminal while waiting: a bar of the answered share over all the
    jobs waited for, the parts, and the time left of the slowest."""
    progress = [job_progress(j) for j in jobs]
    total = sum(p.total for p in progress)
    parts = {name: sum(getattr(p, name) for p in progress) for name in PART_WORDS}
    summed = Progress(unit=progress[0].unit if len({p.unit for p in progress}) == 1 else "item", total=total, **parts)
    filled = int(width * summed.fraction)
    lefts = [t.left_seconds for t in map(timing, jobs) if t.left_seconds is not None]
    left = f" · about {format_duration(max(lefts))} left" if lefts else ""
    return f"[{'#' * filled}{'.' * (width - filled)}] {summed.describe()}{left}"


class LiveLine:
    """One line redrawn in place on a terminal (carriage return and erase-line)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = False

    def show(self, text: str) -> None:
        """Replace the line with ``text``, cut to the terminal's width."""
        width = max(20, shutil.get_terminal_size((100, 20)).columns - 1)
        self.stream.write("\r\x1b[K" + (text if len(text) <= width else text[: width - 1] + "…"))
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        """Erase the line, if one is shown, so ordinary output can follow."""
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.shown = False
