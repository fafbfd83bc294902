"""Where a job's artifact lives and how it is served.

Each attempt writes under its own key, and the row records the winner's (``artifact_key``):
an attempt that lost the job, finishing late, can neither overwrite nor delete the winner's.
"""

from __future__ import annotations

ARCHIVES = {
    "artifact.tar.xz": ("tar.xz", "application/x-xz"),
    "artifact.zip": ("zip", "application/zip"),
}


def artifact_key(job_id: str, attempt: int, filename: str) -> str:
    return f"artifacts/{job_id}/attempt-{attempt}/{filename}"


def archive_kind(filename: str) -> str:
    return ARCHIVES[filename][0]


def media_type(key: str) -> str:
    return ARCHIVES.get(key.rsplit("/", 1)[-1], ("", "application/octet-stream"))[1]


def attempt_keys(job_id: str, attempt: int) -> list[str]:
    """Every key ``attempt`` may have written."""
    return [artifact_key(job_id, attempt, name) for name in ARCHIVES]
