"""Process-tree memory: a child's allocation must show in the tree's PSS and in PeakMemory."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from compressor.measure.memory import PeakMemory, process_tree_pss, tree_memory

MB = 1024 * 1024
# A child that writes 200 MB (so the pages are really resident), says so, and waits for stdin.
CHILD = (
    "import sys; block = b'x' * (200 * 1024 * 1024); "
    "print('ready', flush=True); sys.stdin.readline()"
)


def _start_child() -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    return child


def _stop(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None
    child.stdin.write("\n")
    child.stdin.flush()
    child.wait(timeout=30)


def test_process_tree_pss_counts_children() -> None:
    alone = process_tree_pss()
    child = _start_child()
    try:
        reading = tree_memory()
        with_child = process_tree_pss()
        child_only = process_tree_pss(child.pid)
    finally:
        _stop(child)
    assert reading.source == "pss" and reading.processes >= 2
    assert child_only >= 190 * MB
    assert with_child - alone >= 150 * MB
    # The tree is this process plus the child: summing them again finds the same within drift.
    assert abs(with_child - (alone + child_only)) < 30 * MB


def test_peak_memory_sees_a_child_that_has_exited() -> None:
    with PeakMemory(interval_s=0.05) as peak:
        child = _start_child()
        time.sleep(0.3)  # several samples while the 200 MB is resident
        _stop(child)
    after = process_tree_pss()
    assert peak.source == "pss" and peak.samples >= 4
    assert peak.peak_bytes - peak.baseline_bytes >= 150 * MB
    assert peak.peak_bytes - after >= 150 * MB  # the peak outlived the child
    assert peak.as_json()["peak_bytes"] == peak.peak_bytes


def test_a_zombie_child_does_not_turn_the_reading_to_rss() -> None:
    # An exited child not yet reaped: its smaps_rollup answers ESRCH. Before, the reading fell
    # back to RSS for it and reported the whole tree as "rss" (seen as a flaky CI failure).
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    try:
        reading = tree_memory()
    finally:
        child.wait(timeout=30)
    assert reading.source == "pss"
