"""The service layer used by the command line and the dashboard alike.

``service`` holds :class:`JobService`, the one object callers use; its methods hand each job
to a module: ``prepare`` plans a job (``parent_rows``: task 2 from a task-1 job), ``submit``
records it before any paid call and sends it, ``refresh`` monitors and waits, ``retry``
re-runs gaps, ``collect`` turns a finished job's files into result rows, ``reconcile``
compares the registry with the provider's batch list (and ``recovery``, ``manage``,
``token_limits``, ``housekeeping``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_names

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

__getattr__, __dir__ = lazy_names(__name__, _HOMES)
