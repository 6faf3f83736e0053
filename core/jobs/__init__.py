"""The service layer used by the command line and the dashboard alike.

``service`` holds :class:`JobService` (prepare, submit, refresh, wait, cancel, retry);
``collect`` turns a finished job's files into result rows; ``reconcile`` compares the
registry with the provider's batch list.
"""

from core.jobs.collect import Collection
from core.jobs.common import utc_now
from core.jobs.reconcile import ReconcileReport
from core.jobs.service import JobService

__all__ = ["Collection", "JobService", "ReconcileReport", "utc_now"]
