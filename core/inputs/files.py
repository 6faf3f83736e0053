"""Getting an input file's bytes safely, and telling what kind of file they are.

Only regular files are opened (a named pipe would block forever, a device can have effects of
its own), never more bytes than the limit; an upload arrives as ``(file_name, bytes)``. The
file types: the suffixes read as text or as a workbook, and the signatures of common non-text
files that people rename or pick by mistake. :func:`find_input_files` lists a folder's inputs.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

from core.inputs.limits import InputLimits, too_big
from core.inputs.messages import excerpt, input_error
from core.inputs.sources import source_name

TEXT_SUFFIXES = {".csv", ".tsv", ".txt"}
XLSX_SUFFIXES = {".xlsx", ".xlsm"}
_FOLDER_SUFFIXES = {".csv", ".xlsx"}

# Signatures of common non-text files that people rename or pick by mistake.
_MAGIC = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
)
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # old .xls/.doc, or a password-protected .xlsx
ZIP_MAGIC = b"PK\x03\x04"


def find_input_files(folder: Path) -> list[Path]:
    """List the ``*.csv`` and ``*.xlsx`` files directly in ``folder``, sorted by name.

    Excel lock files (``~$...``) and hidden files are skipped. Raises :class:`InputError`
    naming the folder if it does not exist or holds no such file.
    """
    folder = Path(folder)
    if not folder.exists():
        raise input_error(str(folder), "this folder does not exist. Check the path or create it.")
    if not folder.is_dir():
        raise input_error(str(folder), "this is a file, not a folder. Give the folder that holds the input files.")
    files = sorted(
        (
            p
            for p in folder.iterdir()
            if p.is_file()
            and p.suffix.lower() in _FOLDER_SUFFIXES
            and not p.name.startswith(("~$", "."))
        ),
        key=lambda p: p.name,
    )
    if not files:
        raise input_error(
            str(folder),
            "this folder holds no .csv or .xlsx files. Put the paragraph files there or choose "
            "another folder.",
        )
    return files


def load_source(source: Path | tuple[str, bytes], limits: InputLimits) -> tuple[str, bytes]:
    """The file name and bytes of a path on disk or of an upload ``(file_name, bytes)``, within
    ``limits.max_bytes``. Raises InputError naming the file when it cannot be read."""
    if isinstance(source, tuple):
        if len(source) != 2:
            raise TypeError("an upload must be given as (file_name, bytes)")
        name, raw = source
        if isinstance(raw, (bytearray, memoryview)):
            raw = bytes(raw)
        if not isinstance(raw, bytes):
            raise TypeError("an upload must be given as (file_name, bytes)")
        name = source_name(source)
        if len(raw) > limits.max_bytes:
            raise too_big(name, len(raw), limits)
        return name, raw
    path = Path(source)
    name = path.name
    try:
        # stat before open: opening a named pipe blocks until a writer appears (forever), and
        # opening a device can have effects of its own.
        _require_regular_file(name, os.stat(path))
        # O_NONBLOCK: should the path be swapped for a pipe after the stat, open still returns
        # and the fstat below refuses it.
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise input_error(name, f"file not found at {excerpt(path)}. Check the path.") from None
    except OSError as exc:
        raise input_error(name, f"the file cannot be opened ({excerpt(exc.strerror or exc)}). Is it open in another program?") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        _require_regular_file(name, info)
        if info.st_size > limits.max_bytes:
            raise too_big(name, info.st_size, limits)
        try:
            data = handle.read(limits.max_bytes + 1)  # a file still growing stops at the limit
        except OSError as exc:
            raise input_error(name, f"the file cannot be read ({excerpt(exc.strerror or exc)}).") from None
    if len(data) > limits.max_bytes:
        raise too_big(name, len(data), limits)
    return name, data


def _require_regular_file(name: str, info: os.stat_result) -> None:
    """Refuse anything but a regular file (a folder, named pipe, device or socket)."""
    mode = info.st_mode
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise input_error(name, "this is a folder, not a file.")
    if stat.S_ISFIFO(mode):
        what = "a named pipe (FIFO)"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        what = "a device"
    elif stat.S_ISSOCK(mode):
        what = "a socket"
    else:
        what = "a special file"
    raise input_error(name, f"this is {what}, not a regular file, so it is not read. Give a .csv or .xlsx file.")


def is_xlsx(data: bytes) -> bool:
    """Whether ``data`` is a ZIP archive holding an Excel workbook."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return "xl/workbook.xml" in zf.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return False


def reject_binary(file_name: str, data: bytes) -> None:
    """Raise InputError if ``data`` is clearly not a text table."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return  # UTF-16 with BOM ("Unicode text" export); NUL bytes are expected there
    what = None
    for magic, label in _MAGIC:
        if data.startswith(magic):
            what = label
            break
    if what is None and data.startswith(OLE_MAGIC):
        raise input_error(
            file_name,
            "this is not a text file: it looks like an old Excel .xls workbook or a "
            "password-protected workbook. Save it from Excel as CSV or .xlsx (without password).",
        )
    if what is None and data.startswith(ZIP_MAGIC):
        what = "a ZIP archive (or another Office document)"
    if what is None and b"\x00" in data:
        what = "a binary file (it contains NUL bytes)"
    if what is None:
        sample = data[:65536]
        control = sum(sample.count(bytes([b])) for b in range(32) if b not in (9, 10, 12, 13))
        if control > max(8, len(sample) // 100):
            what = "a binary file (it contains many control characters)"
    if what is not None:
        raise input_error(
            file_name,
            f"this is not a text table: it looks like {what}. Choose the CSV (or .xlsx) file "
            "with the paragraph_text column instead.",
        )
