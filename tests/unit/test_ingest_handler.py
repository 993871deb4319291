"""The ingest Lambda handler (functions/ingest/app.py) on moto, fed SQS batches carrying the sample S3 events."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from seqlane.adapters.factory import ingest_service
from seqlane.settings import ConfigurationError
from tests.conftest import REGION

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
TABLE, RESULTS = "catalog", "results-bucket"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:123456789012:seqlane-ingest"


def event_body(name: str) -> str:
    return (EVENTS / name).read_text()


EVENTBRIDGE = event_body("s3-object-created-eventbridge.json")
NOTIFICATION = event_body("s3-object-created-notification.json")
INGEST = json.loads(EVENTBRIDGE)["detail"]["bucket"]["name"]
RUN = "241121_A01234_0042_BHXXXXXXXX"


@dataclass
class FakeLambdaContext:
    function_name: str = "seqlane-ingest"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:seqlane-ingest"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def sqs_record(body: str) -> dict:
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1732197807000",
            "SenderId": "AIDAEXAMPLEID1234567",
            "ApproximateFirstReceiveTimestamp": "1732197807010",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": REGION,
    }


@pytest.fixture
def handler(aws_credentials, monkeypatch):
    """The handler with its environment, inside a moto account holding the table, buckets and state machine."""
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        ddb.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
        )
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in (INGEST, RESULTS):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        state_machine_arn = boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name="analysis",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}),
            roleArn="arn:aws:iam::123456789012:role/x",
        )["stateMachineArn"]
        queue_url = boto3.client("sqs", region_name=REGION).create_queue(QueueName="seqlane-ingest")["QueueUrl"]
        for name, value in {
            "INGEST_QUEUE_URL": queue_url,
            "SEQLANE_REGION": REGION,
            "CATALOG_TABLE": TABLE,
            "RESULTS_BUCKET": RESULTS,
            "INGEST_BUCKET": INGEST,
            "STATE_MACHINE_ARN": state_machine_arn,
            "DRAGEN_VERSION": "4.3.6",
            "REFERENCE_URI": "s3://refs/hg38/",
            "EVENT_BUS_NAME": "seqlane-test",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "seqlane",
        }.items():
            monkeypatch.setenv(name, value)
        spec = importlib.util.spec_from_file_location("ingest_app", ROOT / "functions" / "ingest" / "app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        ingest_service.cache_clear()  # fresh clients inside this test's mock
        yield module.lambda_handler
        ingest_service.cache_clear()


def sample_slots(sample: str = "NA12878") -> set[str]:
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=TABLE, Key={"pk": {"S": f"RUN#{RUN}"}, "sk": {"S": f"SAMPLE#{sample}"}}
    )["Item"]
    return {name for name in item if name.startswith("fastq#")}


def test_handler_rejects_bad_records_without_retry_and_records_good_ones(handler, caplog):
    # Given a batch with both sample S3 events, a non-JSON body and a JSON body that is no S3 event
    records = [sqs_record(b) for b in (EVENTBRIDGE, "not json at all", '{"hello": "world"}', NOTIFICATION)]
    # When handled
    response = handler({"Records": records}, FakeLambdaContext())
    # Then nothing is retried, the two bad records are logged with their reason, and both uploads are in the catalog
    assert response == {"batchItemFailures": []}
    rejected = [r for r in caplog.records if r.getMessage() == "message rejected, not retried"]
    assert [r.message_id for r in rejected] == [records[1]["messageId"], records[2]["messageId"]]
    assert "not JSON" in rejected[0].reason
    assert "not an S3 event" in rejected[1].reason
    assert sample_slots() == {"fastq#L001#R1", "fastq#L001#R2"}


def test_handler_rejects_poison_messages_once(handler, caplog):
    # Given S3 events that can never be handled: fields missing, a key too long for the catalog, another region
    incomplete_eventbridge = json.loads(EVENTBRIDGE)
    del incomplete_eventbridge["detail"]["object"]
    incomplete_notification = json.loads(NOTIFICATION)
    del incomplete_notification["Records"][0]["s3"]
    too_long = json.loads(EVENTBRIDGE)
    too_long["detail"]["object"]["key"] = f"{RUN}/" + "x" * 1100 + ".fastq.gz"
    elsewhere = json.loads(EVENTBRIDGE)
    elsewhere["region"] = "us-east-1"
    bodies = [incomplete_eventbridge, incomplete_notification, too_long, elsewhere, [1, 2]]
    records = [sqs_record(json.dumps(body)) for body in bodies]

    # When handled, Then none is retried, and each is logged once with its own reason
    assert handler({"Records": records}, FakeLambdaContext()) == {"batchItemFailures": []}
    reasons = [r.reason for r in caplog.records if r.getMessage() == "message rejected, not retried"]
    assert len(reasons) == len(bodies)
    assert "not a complete S3 upload event" in reasons[0] and "not a complete S3 upload event" in reasons[1]
    assert "bytes of UTF-8" in reasons[2]
    assert "us-east-1" in reasons[3]


def queued_work() -> list[str]:
    """The bodies of the work messages the handler sent to its own queue (drained)."""
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.get_queue_url(QueueName="seqlane-ingest")["QueueUrl"]
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        bodies += [m["Body"] for m in messages]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        )
    return bodies


def test_handler_closes_a_run_through_its_own_queue_one_bounded_step_per_message(handler):
    # Given both reads of a sample recorded, and the run's completion marker in the bucket
    records = [sqs_record(EVENTBRIDGE), sqs_record(NOTIFICATION)]
    assert handler({"Records": records}, FakeLambdaContext()) == {"batchItemFailures": []}
    s3 = boto3.client("s3", region_name=REGION)
    for key in (f"{RUN}/NA12878_S1_L001_R1_001.fastq.gz", f"{RUN}/NA12878_S1_L001_R2_001.fastq.gz"):
        s3.put_object(Bucket=INGEST, Key=key, Body=b"@r\nA\n+\nF\n")
    marker = json.loads(EVENTBRIDGE)
    marker["detail"]["object"] |= {"key": f"{RUN}/CopyComplete.txt", "size": 0}

    # When the marker's event is handled, and then each work message it leads to, as SQS would deliver them
    handler({"Records": [sqs_record(json.dumps(marker))]}, FakeLambdaContext())
    kinds, steps = [], 0
    while bodies := queued_work():
        kinds += [json.loads(body)["seqlane_work"] for body in bodies]
        assert handler({"Records": [sqs_record(b) for b in bodies]}, FakeLambdaContext()) == {"batchItemFailures": []}
        steps += 1
        assert steps < 10

    # Then the run was listed, its samples looked at, and the sample started: one step per message
    assert kinds == ["close-run", "advance-run", "advance-sample"]
    item = boto3.client("dynamodb", region_name=REGION).get_item(
        TableName=TABLE, Key={"pk": {"S": f"RUN#{RUN}"}, "sk": {"S": "SAMPLE#NA12878"}}
    )["Item"]
    assert item["status"]["S"] == "MANIFESTED" and "execution_started_at" in item


def test_handler_rejects_unusable_work_once(handler, caplog):
    # Given a work message of an unknown kind, When it is handled, Then it is rejected once, not retried
    body = json.dumps({"seqlane_work": "reticulate", "run_id": RUN})
    assert handler({"Records": [sqs_record(body)]}, FakeLambdaContext()) == {"batchItemFailures": []}
    (rejected,) = [r for r in caplog.records if r.getMessage() == "message rejected, not retried"]
    assert "not a seqlane work message" in rejected.reason


def test_handler_reports_transient_failure_for_retry(handler, monkeypatch):
    # Given a catalog table that does not exist, and a batch of an upload and an S3 test event
    monkeypatch.setenv("CATALOG_TABLE", "missing-table")
    upload, test_event = sqs_record(EVENTBRIDGE), sqs_record(json.dumps({"Event": "s3:TestEvent", "Bucket": INGEST}))
    # When handled
    response = handler({"Records": [upload, test_event]}, FakeLambdaContext())
    # Then only the upload is handed back to SQS for a retry
    assert response == {"batchItemFailures": [{"itemIdentifier": upload["messageId"]}]}


def test_handler_missing_setting_raises_configuration_error(handler, monkeypatch):
    monkeypatch.delenv("STATE_MACHINE_ARN")
    with pytest.raises(ConfigurationError, match="STATE_MACHINE_ARN"):
        handler({"Records": [sqs_record(EVENTBRIDGE)]}, FakeLambdaContext())
