"""Named errors of :mod:`core.interop`; each message names the file, line or field at fault."""

from __future__ import annotations

from core.errors import CoreError


class InteropError(CoreError):
    """Something brought in from outside cannot be used as it is."""


class LegacyLayoutError(InteropError):
    """A path is not (part of) the previous tool's layout, or holds nothing to import."""


class ResultFileError(InteropError):
    """A result file cannot be read: not a regular file, too large, or a line that is not a
    JSON object with a custom_id."""


class ForeignResults(InteropError):
    """A result line whose custom_id is not one of the job's requests: the file belongs to
    another job (or was edited), so nothing from it is taken."""


class BatchBusy(InteropError):
    """Results cannot be imported for a batch that runs at a provider, or whose results come
    from the provider."""


class RowsUnresolved(InteropError):
    """An imported job's rows cannot be rebuilt: neither its request files nor its input file
    match the recorded counts and the custom_ids its answers carry."""


class ExportError(InteropError):
    """A job's request files cannot be exported (missing file, bad model name)."""
