from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.settings import StorageSettings

# head_object answers a bare 404 (no body, so no "NoSuchKey" code); get_object says NoSuchKey.
_MISSING = {"404", "NoSuchKey", "NotFound"}


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _check_key(key: str) -> str:
    # Same rule as LocalStorage, so a key that works on one backend works on the other.
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in {"", ".", ".."} for p in parts):
        raise ValueError(f"invalid storage key: {key!r}")
    return key


def _byte_range(start: int, stop: int | None) -> str:
    return f"bytes={start}-" if stop is None else f"bytes={start}-{stop - 1}"


class S3Storage:
    """S3 or any S3-compatible server.

    Atomicity comes from S3 itself: a PUT (or a completed multipart upload) replaces the object
    under its key in one step, so readers see the old object or the whole new one, and an
    interrupted upload leaves nothing visible. Credentials come from boto3's usual chain
    (AWS_* variables, shared config, instance role), never from modelpress settings.
    """

    def __init__(self, settings: StorageSettings) -> None:
        import boto3
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        if not settings.s3_bucket:
            raise ValueError("MODELPRESS_S3_BUCKET is required when MODELPRESS_STORAGE_BACKEND=s3")
        self.bucket = settings.s3_bucket
        self.endpoint = settings.s3_endpoint_url or "AWS S3"
        config = Config(
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 5, "mode": "standard"},
            signature_version="s3v4",  # presigned URLs: SigV2 is refused by newer regions
        )
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            config=config,
        )
        # Readiness probes must answer in seconds, not after five retried timeouts.
        self._ping_client: Any = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 1}),
        )
        # Multipart above 64 MiB: each part is retried on its own, and S3 only makes the object
        # visible when the upload completes.
        self._transfer = TransferConfig(
            multipart_threshold=64 * 1024**2, multipart_chunksize=64 * 1024**2
        )

    def put_file(self, key: str, src: Path) -> None:
        self.client.upload_file(str(src), self.bucket, _check_key(key), Config=self._transfer)

    def fetch_to(self, key: str, dest: Path) -> None:
        # s3transfer downloads to a temporary name beside ``dest`` and renames it at the end.
        self.client.download_file(self.bucket, _check_key(key), str(dest), Config=self._transfer)

    def copy(self, source: str, key: str) -> None:
        # A managed copy: CopyObject, or UploadPartCopy parts above the multipart threshold.
        where = {"Bucket": self.bucket, "Key": _check_key(source)}
        self.client.copy(where, self.bucket, _check_key(key), Config=self._transfer)

    def iter_bytes(
        self, key: str, chunk_size: int = 1024 * 1024, *, start: int = 0, stop: int | None = None
    ) -> Iterator[bytes]:
        ranged = {} if start == 0 and stop is None else {"Range": _byte_range(start, stop)}
        body = self.client.get_object(Bucket=self.bucket, Key=_check_key(key), **ranged)["Body"]
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def download_url(self, key: str, *, filename: str, media_type: str, expires_s: int) -> str:
        """A presigned GET: the client downloads from S3 itself (ranges included), and the
        response carries the file name and type the API would have sent."""
        params = {
            "Bucket": self.bucket,
            "Key": _check_key(key),
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
            "ResponseContentType": media_type,
        }
        return str(
            self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)
        )

    def size(self, key: str) -> int:
        head = self.client.head_object(Bucket=self.bucket, Key=_check_key(key))
        return int(head["ContentLength"])

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=_check_key(key))
        except ClientError as exc:
            # Only "not found" means missing; a 403, a wrong bucket or a 5xx must not read as
            # "the artifact is gone" (callers would report a 404 or re-create it).
            if _error_code(exc) in _MISSING:
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        # S3 deletes are idempotent: deleting a missing key succeeds, like LocalStorage.
        self.client.delete_object(Bucket=self.bucket, Key=_check_key(key))

    def ping(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        where = f"bucket {self.bucket!r} at {self.endpoint}"
        try:
            self._ping_client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = _error_code(exc)
            if code in {"404", "NoSuchBucket", "NotFound"}:
                raise OSError(f"S3 {where} does not exist") from exc
            if code in {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
                raise OSError(f"S3 {where} refused access ({code}): check credentials") from exc
            raise OSError(f"S3 {where} answered {code or exc}") from exc
        except BotoCoreError as exc:
            # No credentials, unreachable endpoint, timeouts.
            raise OSError(f"S3 {where} is unreachable: {exc}") from exc
