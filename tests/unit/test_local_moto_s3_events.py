"""moto's S3 -> EventBridge events carry the object key encoded as AWS encodes it, once the local patch is in."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from seqlane.local import moto_s3_events
from seqlane.uploads import event_key, uploads_from_message
from tests.conftest import REGION

KEYS = [
    "241121 run+1%/NA12878_S1_L001_R1_001.fastq.gz",
    "241121 run+1%/notes & QC=1?#2 é.txt",
    "run/literally%20encoded+plus%2B.txt",
]


@pytest.fixture
def s3_to_queue(aws_credentials):
    """A bucket with EventBridge notifications on, and a queue the default bus's S3 rule delivers to."""
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        events = boto3.client("events", region_name=REGION)
        s3.create_bucket(Bucket="ingest", CreateBucketConfiguration={"LocationConstraint": REGION})
        s3.put_bucket_notification_configuration(
            Bucket="ingest", NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        url = sqs.create_queue(QueueName="uploads")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = {"source": ["aws.s3"], "detail-type": ["Object Created"]}
        events.put_rule(Name="uploads", EventPattern=json.dumps(pattern))
        events.put_targets(Rule="uploads", Targets=[{"Id": "queue", "Arn": arn}])
        yield s3, sqs, url


def _received(sqs, url) -> list[dict]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


@pytest.fixture
def patched():
    moto_s3_events.install()
    try:
        yield
    finally:
        moto_s3_events.uninstall()


@pytest.mark.parametrize("key", KEYS)
def test_moto_s3_events_encode_the_key_as_aws_does(s3_to_queue, patched, key):
    # Given the patch installed and an upload whose key holds spaces, "+", "%", "&", "=", "?", "#" or "é"
    s3, sqs, url = s3_to_queue
    s3.put_object(Bucket="ingest", Key=key, Body=b"x")

    # When its EventBridge event is read from the queue
    [event] = _received(sqs, url)

    # Then the key in the detail is URL-encoded as S3 writes it, and reads back as exactly the uploaded key
    assert event["detail-type"] == "Object Created"
    assert event["detail"]["object"]["key"] == event_key(key)
    assert uploads_from_message(event)[0].key == key


def test_moto_s3_events_without_the_patch_send_the_raw_key(s3_to_queue):
    # Given moto as it is (the reason for the patch)
    s3, sqs, url = s3_to_queue
    s3.put_object(Bucket="ingest", Key="run/a+b.txt", Body=b"x")

    # When / Then its EventBridge event carries the raw key, which decodes into another key ("a b.txt")
    [event] = _received(sqs, url)
    assert event["detail"]["object"]["key"] == "run/a+b.txt"
    assert uploads_from_message(event)[0].key == "run/a b.txt"


def test_moto_s3_events_uninstall_restores_moto(patched):
    # Given the patch installed / When it is uninstalled (twice) / Then moto's own function is back
    from moto.s3 import notifications

    assert notifications._send_event_bridge_message is moto_s3_events._send_event_bridge_message
    moto_s3_events.uninstall()
    moto_s3_events.uninstall()
    assert notifications._send_event_bridge_message is not moto_s3_events._send_event_bridge_message
