"""The service layer used by the command line and the dashboard alike.

``service`` holds :class:`JobService` (prepare, submit, refresh, wait, cancel, retry);
``collect`` turns a finished job's files into result rows; ``reconcile`` compares the
registry with the provider's batch list.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.jobs.collect import Collection
    from core.jobs.common import utc_now
    from core.jobs.reconcile import ReconcileReport
    from core.jobs.service import JobService

__all__ = ["Collection", "JobService", "ReconcileReport", "utc_now"]

# Each name loads its module at first use: ``collect`` brings pandas and pyarrow, which the
# command line does not need to list jobs (PEP 562 module __getattr__).
_HOMES = {"Collection": "core.jobs.collect", "JobService": "core.jobs.service",
          "ReconcileReport": "core.jobs.reconcile", "utc_now": "core.jobs.common"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'core.jobs' has no attribute {name!r}")
