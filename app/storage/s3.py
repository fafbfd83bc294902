from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.settings import StorageSettings


class S3Storage:
    """S3 or any S3-compatible server; uploads are atomic per object by S3's own semantics."""

    def __init__(self, settings: StorageSettings) -> None:
        import boto3

        if not settings.s3_bucket:
            raise ValueError("MODELPRESS_S3_BUCKET is required when MODELPRESS_STORAGE_BACKEND=s3")
        self.bucket = settings.s3_bucket
        self.client: Any = boto3.client(
            "s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region
        )

    def put_file(self, key: str, src: Path) -> None:
        self.client.upload_file(str(src), self.bucket, key)

    def fetch_to(self, key: str, dest: Path) -> None:
        self.client.download_file(self.bucket, key, str(dest))

    def iter_bytes(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        yield from body.iter_chunks(chunk_size)

    def size(self, key: str) -> int:
        return int(self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"])

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.ClientError:
            return False
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def ping(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)
