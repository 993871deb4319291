"""S3 for the job runner (the only runner module that talks to AWS): parallel ranged reads, write-once uploads.

Reads: `head` gives an object's size and ETag; `stream` yields its bytes in order while up to `concurrency` ranged
GETs run ahead, each with `If-Match` on that ETag, so an object replaced during the download is refused rather than
mixed. Writes: every PutObject and CompleteMultipartUpload carries `If-None-Match: *`, so an existing object is
never overwritten (`AlreadyExists`). Errors come out as four kinds the runner maps to its exit codes:
`ObjectUnavailable` (missing or not readable), `ObjectChanged` (not the object it was), `AlreadyExists` and
`StorageUnreachable` (no connection, timeouts, throttling after botocore's own retries).
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from s3transfer.exceptions import RetriesExceededError

from seqlane.manifest import parse_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

# Without s3:ListBucket, S3 answers 403 rather than 404 for a missing key, so both mean "not there for us".
_UNAVAILABLE_CODES = frozenset({"403", "404", "AccessDenied", "NoSuchKey", "NoSuchBucket"})
_PRECONDITION_CODES = frozenset({"412", "PreconditionFailed", "ConditionalRequestConflict", "409"})
_THROTTLING_CODES = frozenset(
    {
        "500",
        "503",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "ServiceUnavailable",
        "InternalError",
        "RequestTimeout",
    }
)
_STREAM_ERRORS = (ReadTimeoutError, ResponseStreamingError, IncompleteReadError, ConnectionClosedError)
_STREAM_TRIES = 3  # botocore retries requests, not a body that breaks off mid-read
PART_SIZE = 8 * 1024 * 1024  # as boto3's transfer manager
CONCURRENCY = 10  # ranged GETs (or part uploads) in flight per object, as boto3's transfer manager
_MAX_PARTS = 10_000
_POOL_CONNECTIONS = 64  # up to 4 files at once x CONCURRENCY, plus the single requests


class ObjectUnavailable(LookupError):
    """An S3 object (or bucket) is missing or this job may not read it."""


class ObjectChanged(LookupError):
    """An S3 object is no longer the one it was (its ETag moved while it was read)."""


class AlreadyExists(FileExistsError):
    """A write-once key already holds an object."""


class StorageUnreachable(ConnectionError):
    """S3 did not answer (connection refused, timeouts) or kept throttling, after botocore's retries."""


@dataclass(frozen=True, slots=True)
class S3Object:
    key: str
    size: int
    etag: str = ""  # without quotes


@contextlib.contextmanager
def _s3_errors(uri: str, *, writing: bool = False) -> Iterator[None]:
    try:
        yield
    except ClientError as err:
        error = err.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = str(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in _PRECONDITION_CODES or status == "412":
            if writing:
                raise AlreadyExists(f"{uri} already exists: written by another attempt, not overwritten") from err
            raise ObjectChanged(f"{uri} changed while it was being read (ETag no longer matches)") from err
        if code in _UNAVAILABLE_CODES:
            raise ObjectUnavailable(f"{uri} is missing or not readable ({code})") from err
        if code in _THROTTLING_CODES or status in _THROTTLING_CODES:
            raise StorageUnreachable(f"S3 kept refusing {uri} after retries ({code or status})") from err
        raise
    except RetriesExceededError as err:
        raise StorageUnreachable(f"S3 unreachable for {uri}: {err.last_exception or err}") from err
    except BotoCoreError as err:  # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ...
        raise StorageUnreachable(f"S3 unreachable for {uri}: {err}") from err


class S3Storage:
    def __init__(
        self,
        region: str | None = None,
        client=None,
        *,
        part_size: int = PART_SIZE,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self._s3 = client or boto3.client(
            "s3", region_name=region, config=Config(max_pool_connections=_POOL_CONNECTIONS)
        )
        self.part_size = part_size
        self.concurrency = concurrency

    # ---- reads
    def read_text(self, uri: str) -> str:
        bucket, key = parse_s3_uri(uri)
        with _s3_errors(uri):
            return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()

    def head(self, uri: str) -> S3Object:
        bucket, key = parse_s3_uri(uri)
        with _s3_errors(uri):
            response = self._s3.head_object(Bucket=bucket, Key=key)
        return S3Object(key, int(response["ContentLength"]), response["ETag"].strip('"'))

    def stream(self, uri: str, obj: S3Object) -> Iterator[bytes]:
        """The bytes of `obj` (from `head`) in order, `part_size` at a time, `concurrency` ranged GETs ahead."""
        if obj.size == 0:
            return
        bucket, key = parse_s3_uri(uri)
        step = self.part_size
        ranges = iter([(start, min(start + step, obj.size) - 1) for start in range(0, obj.size, step)])
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="s3-get") as pool:
            pending = deque(
                pool.submit(self._get_range, uri, bucket, key, r, obj.etag) for r in islice(ranges, self.concurrency)
            )
            try:
                while pending:
                    data = pending.popleft().result()
                    following = next(ranges, None)
                    if following is not None:
                        pending.append(pool.submit(self._get_range, uri, bucket, key, following, obj.etag))
                    yield data
            finally:
                for future in pending:
                    future.cancel()

    def _get_range(self, uri: str, bucket: str, key: str, byte_range: tuple[int, int], etag: str) -> bytes:
        start, end = byte_range
        for attempt in range(1, _STREAM_TRIES + 1):
            try:
                with _s3_errors(uri):
                    response = self._s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={start}-{end}", IfMatch=etag)
                    data = response["Body"].read()
            except StorageUnreachable as err:
                if attempt == _STREAM_TRIES or not isinstance(err.__cause__, _STREAM_ERRORS):
                    raise
                continue
            if len(data) != end - start + 1:
                raise ObjectChanged(f"{uri}: bytes {start}-{end} came back as {len(data)} bytes")
            return data
        raise AssertionError("unreachable")  # pragma: no cover

    def download(self, uri: str, path: Path) -> int:
        """Download one object to `path` with the transfer manager; returns the number of bytes written."""
        bucket, key = parse_s3_uri(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _s3_errors(uri):
            self._s3.download_file(bucket, key, str(path))
        return path.stat().st_size

    def list_prefix(self, uri: str) -> list[S3Object]:
        bucket, prefix = parse_s3_uri(uri)
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        with _s3_errors(uri):
            return [
                S3Object(o["Key"], o["Size"], o.get("ETag", "").strip('"'))
                for page in pages
                for o in page.get("Contents", [])
            ]

    def download_prefix(self, uri: str, directory: Path) -> list[Path]:
        """Download every object under the `uri` folder into `directory`, keeping paths relative to it."""
        uri = uri if uri.endswith("/") else uri + "/"  # "ref/hg38" must not also take "ref/hg38-alt/..."
        bucket, prefix = parse_s3_uri(uri)
        paths = []
        for obj in self.list_prefix(uri):
            relative = PurePosixPath(obj.key[len(prefix) :])
            if obj.key.endswith("/"):  # a console-made "folder" marker, not a file
                continue
            if ".." in relative.parts or relative.is_absolute():
                raise ObjectUnavailable(f"s3://{bucket}/{obj.key} would be written outside {directory}")
            paths.append(directory / relative)
            self.download(f"s3://{bucket}/{obj.key}", paths[-1])
        return paths

    # ---- write-once writes
    def upload(self, path: Path, uri: str) -> None:
        """Upload a file to a key that must not exist yet: one PutObject, or a multipart upload for large files."""
        bucket, key = parse_s3_uri(uri)
        size = path.stat().st_size
        if size <= self.part_size:
            with path.open("rb") as body, _s3_errors(uri, writing=True):
                self._s3.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
            return
        self._upload_multipart(path, uri, bucket, key, size)

    def _upload_multipart(self, path: Path, uri: str, bucket: str, key: str, size: int) -> None:
        if self._exists(uri):  # only to fail early: the guarantee is CompleteMultipartUpload's If-None-Match
            raise AlreadyExists(f"{uri} already exists: written by another attempt, not overwritten")
        part_size = max(self.part_size, math.ceil(size / _MAX_PARTS))
        with _s3_errors(uri, writing=True):
            upload_id = self._s3.create_multipart_upload(Bucket=bucket, Key=key, ChecksumAlgorithm="CRC32")["UploadId"]

        def send(number: int) -> CompletedPartTypeDef:
            with path.open("rb") as stream:
                stream.seek((number - 1) * part_size)
                body = stream.read(part_size)
            with _s3_errors(uri, writing=True):
                response = self._s3.upload_part(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                    ChecksumAlgorithm="CRC32",
                )
            part: CompletedPartTypeDef = {"PartNumber": number, "ETag": response["ETag"]}
            if response.get("ChecksumCRC32"):
                part["ChecksumCRC32"] = response["ChecksumCRC32"]
            return part

        try:
            with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="s3-put") as pool:
                parts = list(pool.map(send, range(1, math.ceil(size / part_size) + 1)))
            with _s3_errors(uri, writing=True):
                self._s3.complete_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
                )
        except BaseException:
            with contextlib.suppress(ClientError, BotoCoreError):
                self._s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise

    def _exists(self, uri: str) -> bool:
        try:
            self.head(uri)
        except ObjectUnavailable:
            return False
        return True

    def put_json(self, uri: str, text: str) -> None:
        bucket, key = parse_s3_uri(uri)
        with _s3_errors(uri, writing=True):
            self._s3.put_object(
                Bucket=bucket, Key=key, Body=text.encode(), ContentType="application/json", IfNoneMatch="*"
            )
