"""Where a job's artifact lives and how it is served. One artifact per job, keyed by its id."""

from __future__ import annotations

ARCHIVES = {
    "artifact.tar.xz": ("tar.xz", "application/x-xz"),
    "artifact.zip": ("zip", "application/zip"),
}


def artifact_key(job_id: str, filename: str) -> str:
    return f"artifacts/{job_id}/{filename}"


def archive_kind(filename: str) -> str:
    return ARCHIVES[filename][0]


def media_type(key: str) -> str:
    return ARCHIVES.get(key.rsplit("/", 1)[-1], ("", "application/octet-stream"))[1]


def all_keys(job_id: str) -> list[str]:
    return [artifact_key(job_id, name) for name in ARCHIVES]
