"""The runner's S3 adapter on moto: ranged parallel reads pinned to one ETag, write-once uploads."""

from __future__ import annotations

import os

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from seqlane.runner.storage import AlreadyExists, ObjectChanged, S3Storage, StorageUnreachable, _s3_errors

REGION = "eu-west-1"
PART = 5 * 1024 * 1024  # S3's smallest multipart part


@pytest.fixture
def s3(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket="bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
        yield client


def test_storage_stream_returns_the_object_in_order_with_parts_in_parallel(s3):
    # Given an object of several parts
    body = os.urandom(3 * 1024 * 1024 + 17)
    s3.put_object(Bucket="bucket", Key="k", Body=body)
    storage = S3Storage(REGION, part_size=256 * 1024, concurrency=4)

    # When it is streamed, Then the chunks are the object's bytes in order, and head gave its ETag
    obj = storage.head("s3://bucket/k")
    assert obj.size == len(body)
    assert obj.etag == s3.head_object(Bucket="bucket", Key="k")["ETag"].strip('"')
    assert b"".join(storage.stream("s3://bucket/k", obj)) == body


def test_storage_stream_refuses_an_object_replaced_during_the_download(s3):
    # Given the object is replaced after its ETag was read
    s3.put_object(Bucket="bucket", Key="k", Body=b"a" * 1000)
    storage = S3Storage(REGION, part_size=100)
    obj = storage.head("s3://bucket/k")
    s3.put_object(Bucket="bucket", Key="k", Body=b"b" * 1000)

    # Then the ranged reads (If-Match on the ETag) refuse it rather than mixing two objects
    with pytest.raises(ObjectChanged, match="s3://bucket/k changed"):
        b"".join(storage.stream("s3://bucket/k", obj))


def test_storage_multipart_upload_is_write_once(s3, tmp_path):
    # Given a file larger than one part
    path = tmp_path / "big.bam"
    path.write_bytes(os.urandom(2 * PART + 1))
    storage = S3Storage(REGION, part_size=PART)

    # When it is uploaded, Then it arrives whole, as a multipart object
    storage.upload(path, "s3://bucket/out/big.bam")
    assert s3.get_object(Bucket="bucket", Key="out/big.bam")["Body"].read() == path.read_bytes()
    assert s3.head_object(Bucket="bucket", Key="out/big.bam")["ETag"].strip('"').endswith("-3")

    # And a second upload to the same key is refused, even past the early check (CompleteMultipartUpload's
    # If-None-Match), leaving no unfinished upload behind
    with pytest.raises(AlreadyExists):
        storage.upload(path, "s3://bucket/out/big.bam")
    storage._exists = lambda uri: False
    with pytest.raises(AlreadyExists, match="already exists"):
        storage.upload(path, "s3://bucket/out/big.bam")
    assert not s3.list_multipart_uploads(Bucket="bucket").get("Uploads")


def test_storage_small_upload_and_json_are_write_once(s3, tmp_path):
    # Given a small object already there
    path = tmp_path / "x.csv"
    path.write_text("a,b\n")
    storage = S3Storage(REGION)
    storage.upload(path, "s3://bucket/x.csv")

    # Then neither a PutObject of a file nor of JSON overwrites it
    with pytest.raises(AlreadyExists):
        storage.upload(path, "s3://bucket/x.csv")
    with pytest.raises(AlreadyExists):
        storage.put_json("s3://bucket/x.csv", "{}")
    assert s3.get_object(Bucket="bucket", Key="x.csv")["Body"].read() == b"a,b\n"


@pytest.mark.parametrize("code", ["SlowDown", "ServiceUnavailable", "503"])
def test_storage_throttling_after_retries_is_unreachable(code):
    # Given S3 still throttling once botocore's retries are spent, Then it is "unreachable", not a missing object
    error = ClientError({"Error": {"Code": code, "Message": "Please reduce your request rate."}}, "GetObject")
    with pytest.raises(StorageUnreachable, match=code), _s3_errors("s3://bucket/k"):
        raise error
