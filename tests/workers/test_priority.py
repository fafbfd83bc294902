"""Speculative warming runs at a lower CPU priority, and the process gets its priority back;
where it could not get it back, nothing is lowered."""

from __future__ import annotations

import os

from workers.priority import _can_restore, lower_priority


def test_priority_is_lowered_inside_and_restored_after() -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    with lower_priority(by=5):
        inside = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, 0) == before
    assert inside == (min(19, before + 5) if _can_restore(before) else before)
