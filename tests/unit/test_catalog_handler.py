"""functions/catalog/app.py on moto: SQS batches of Batch job state change events, with Powertools idempotency."""

from __future__ import annotations

import importlib.util
import json
import uuid
from dataclasses import dataclass, field

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from seqlane.adapters import factory
from tests.conftest import REGION, ROOT
from tests.unit.test_catalog import BUCKET, BUS, SAMPLE, TABLE, batch_event, execution_event, seqlane_world

OTHER = "NA24385"
IDEMPOTENCY_TABLE = "seqlane-idempotency"


def load_catalog_app():
    """By path, under its own name: functions/ingest/app.py is also a module called `app`."""
    spec = importlib.util.spec_from_file_location("seqlane_catalog_app", ROOT / "functions" / "catalog" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


app = load_catalog_app()


@dataclass
class FakeContext:
    function_name: str = "seqlane-catalog"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:seqlane-catalog"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def sqs_event(*bodies: dict) -> dict:
    records = [
        {
            "messageId": str(uuid.uuid4()),
            "receiptHandle": "handle",
            "body": json.dumps(body),
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1732203928000"},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:seqlane-catalog",
            "awsRegion": REGION,
        }
        for body in bodies
    ]
    return {"Records": records}


def invoke(event: dict) -> dict:
    return app.lambda_handler(event, FakeContext())


@pytest.fixture
def world(aws_credentials, monkeypatch):
    environment = {
        "SEQLANE_REGION": REGION,
        "CATALOG_TABLE": TABLE,
        "RESULTS_BUCKET": BUCKET,
        "IDEMPOTENCY_TABLE": IDEMPOTENCY_TABLE,
        "EVENT_BUS_NAME": BUS,
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "seqlane",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    factory.catalog_service.cache_clear()
    factory._idempotency.cache_clear()
    with seqlane_world(claimed=(SAMPLE, OTHER)) as created:
        created.dynamodb.create_table(
            TableName=IDEMPOTENCY_TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
        yield created
    factory.catalog_service.cache_clear()
    factory._idempotency.cache_clear()


def test_catalog_handler_same_event_twice_catalogs_and_publishes_once(world):
    # Given a sample's result file and its job's SUCCEEDED event
    world.put_result()
    event = batch_event("SUCCEEDED")

    # When SQS delivers the event, and then delivers it again
    first = invoke(sqs_event(event))
    finished_at = world.sample_item()["finished_at"]
    second = invoke(sqs_event(event))

    # Then both deliveries succeed, the second changes nothing, and one AnalysisSucceeded was published
    assert first == second == {"batchItemFailures": []}
    assert world.sample_item()["finished_at"] == finished_at
    assert world.sample_item()["status"] == "SUCCEEDED"
    assert len(world.items(f"OUTPUT#{SAMPLE}#")) == 3
    assert [e["detail-type"] for e in world.published()] == ["AnalysisSucceeded"]


def test_catalog_handler_drops_foreign_events_without_retry(world):
    # Given an S3 EventBridge event and a Batch event for a job that is not seqlane's
    s3_event = {**batch_event("SUCCEEDED"), "source": "aws.s3", "detail-type": "Object Created"}
    foreign_job = batch_event("SUCCEEDED")
    foreign_job["detail"]["parameters"] = {"input": "s3://elsewhere/data.csv"}

    # When they are delivered
    response = invoke(sqs_event(s3_event, foreign_job))

    # Then neither is retried, nothing is cataloged and nothing is published
    assert response == {"batchItemFailures": []}
    assert world.sample_item()["status"] == "MANIFESTED"
    assert world.published() == []


def test_catalog_handler_success_whose_result_file_is_missing_fails_once_without_retry(world):
    # Given one sample with its result file and another whose job wrote none
    world.put_result(SAMPLE)
    event = sqs_event(batch_event("SUCCEEDED", SAMPLE), batch_event("SUCCEEDED", OTHER))

    # When both SUCCEEDED events are delivered in one batch
    response = invoke(event)

    # Then neither is retried: the first SUCCEEDED, the second FAILED naming the missing file (not stuck SUBMITTED)
    assert response == {"batchItemFailures": []}
    assert (world.sample_item(SAMPLE)["status"], world.sample_item(OTHER)["status"]) == ("SUCCEEDED", "FAILED")
    assert "result file" in world.sample_item(OTHER)["failure_reason"]
    assert sorted((e["detail-type"], e["detail"]["sample_id"]) for e in world.published()) == [
        ("AnalysisFailed", OTHER),
        ("AnalysisSucceeded", SAMPLE),
    ]


def test_catalog_handler_rejects_poison_messages_once(world):
    # Given bodies that can never be cataloged: not JSON, JSON that is not an object, an execution event without
    # seqlane's input, and a Batch event with a non-numeric attempt
    no_input = {"source": "aws.states", "detail-type": "Step Functions Execution Status Change"}
    no_input["detail"] = execution_event("FAILED", input="{}")
    bad_attempt = batch_event("SUCCEEDED")
    bad_attempt["detail"]["parameters"]["attempt"] = "two"
    records = sqs_event(no_input, bad_attempt)["Records"]
    records += [
        {**records[0], "messageId": "not-json", "body": "{oops"},
        {**records[0], "messageId": "list", "body": "[]"},
    ]

    # When they are delivered, Then none is reported for retry, and nothing changes
    assert invoke({"Records": records}) == {"batchItemFailures": []}
    assert world.sample_item()["status"] == "MANIFESTED"
    assert world.published() == []


def test_catalog_handler_retries_transient_failures(world, monkeypatch):
    # Given the catalog table is unreachable for a moment
    world.put_result(SAMPLE)
    event = sqs_event(batch_event("SUCCEEDED", SAMPLE))

    def unavailable(*args, **kwargs):
        raise ConnectionError("catalog unreachable")

    monkeypatch.setattr(
        factory.catalog_service(factory.CatalogSettings.from_env()).catalog, "finish_analysis", unavailable
    )

    # When the event is delivered, Then the invocation fails (Powertools fails a batch whose every record failed),
    # so SQS delivers it again, and nothing was published
    with pytest.raises(BatchProcessingError, match="All records failed"):
        invoke(event)
    assert world.published() == []


def test_catalog_handler_routes_execution_status_changes(world):
    # Given Step Functions' event for an execution that timed out
    event = {"source": "aws.states", "detail-type": "Step Functions Execution Status Change"}
    event["detail"] = execution_event("TIMED_OUT")

    # When it is delivered, Then the sample is TIMED_OUT and AnalysisFailed was published
    assert invoke(sqs_event(event)) == {"batchItemFailures": []}
    assert world.sample_item()["status"] == "TIMED_OUT"
    assert [e["detail"]["status"] for e in world.published()] == ["TIMED_OUT"]
