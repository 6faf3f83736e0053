"""Named errors of the core. Every message is written for a researcher, not a developer."""

from __future__ import annotations


class CoreError(Exception):
    """Base class: anything the CLI or the dashboard can show as a one-line message."""


class InputError(CoreError):
    """An input file cannot be used; the message names the file and what is wrong."""

    def __init__(self, file_name: str, problem: str) -> None:
        self.file_name = file_name
        self.problem = problem
        super().__init__(f"{file_name}: {problem}")


class PromptError(CoreError):
    """A prompt file is missing or does not fit its task."""


class TaskError(CoreError):
    """Unknown task, or a task that cannot run on the given input (e.g. an unfinished parent job)."""


class JobNotFound(CoreError):
    """No job or batch with that id in the registry."""


class RegistryError(CoreError):
    """The job registry cannot be read or written."""


class ProviderError(CoreError):
    """The API provider refused a call or could not be reached."""


class SubmissionIncomplete(ProviderError):
    """The job is recorded but some of its batches could not be sent: resume it, never submit
    the same inputs again (that would pay twice)."""

    def __init__(self, job_id: str, message: str) -> None:
        self.job_id = job_id
        super().__init__(message)


class TransientProviderError(ProviderError):
    """A failure worth retrying later (network, rate limit, 5xx). Never overwrites a known status."""


class AuthenticationFailed(ProviderError):
    """The API key is missing or was rejected."""


class NotReady(CoreError):
    """The job is not in a state that allows the requested action yet."""


class StorageError(CoreError):
    """A file could not be written (a full disk, a name too long, no permission); what was
    there before is left intact."""
