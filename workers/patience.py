"""How long a worker waits for a database that is away: as long as an attempt's lease lasts.
Past it another worker may have taken the job over, so waiting longer helps nobody."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from app.db.session import retry_while_away
from app.settings import get_settings

T = TypeVar("T")


def patiently(call: Callable[[], T], what: str) -> T:
    """``call()`` (which opens its own session), retried with back-off while the database is
    unreachable; its error once the lease's length has passed."""
    return retry_while_away(call, what=what, for_s=get_settings().worker.job_lease_s)
