"""S3 for the job runner (the only runner module that talks to AWS): managed, parallel multipart transfers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import boto3
from botocore.exceptions import ClientError

from seqlane.manifest import parse_s3_uri

# Without s3:ListBucket, S3 answers 403 rather than 404 for a missing key, so both mean "not there for us".
_UNAVAILABLE_CODES = frozenset({"403", "404", "AccessDenied", "NoSuchKey", "NoSuchBucket"})


class ObjectUnavailable(LookupError):
    """An S3 object (or bucket) is missing or this job may not read it."""


@dataclass(frozen=True, slots=True)
class S3Object:
    key: str
    size: int


@contextlib.contextmanager
def _unavailable_as_error(uri: str) -> Iterator[None]:
    try:
        yield
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in _UNAVAILABLE_CODES:
            raise ObjectUnavailable(f"{uri} is missing or not readable ({code})") from err
        raise


class S3Storage:
    def __init__(self, region: str | None = None, client=None) -> None:
        self._s3 = client or boto3.client("s3", region_name=region)

    def read_text(self, uri: str) -> str:
        bucket, key = parse_s3_uri(uri)
        with _unavailable_as_error(uri):
            return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()

    def download(self, uri: str, path: Path) -> int:
        """Download one object to `path`; returns the number of bytes written."""
        bucket, key = parse_s3_uri(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _unavailable_as_error(uri):
            self._s3.download_file(bucket, key, str(path))
        return path.stat().st_size

    def list_prefix(self, uri: str) -> list[S3Object]:
        bucket, prefix = parse_s3_uri(uri)
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        with _unavailable_as_error(uri):
            return [S3Object(o["Key"], o["Size"]) for page in pages for o in page.get("Contents", [])]

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

    def upload(self, path: Path, uri: str) -> None:
        bucket, key = parse_s3_uri(uri)
        self._s3.upload_file(str(path), bucket, key)

    def put_json(self, uri: str, text: str) -> None:
        bucket, key = parse_s3_uri(uri)
        self._s3.put_object(Bucket=bucket, Key=key, Body=text.encode(), ContentType="application/json")
