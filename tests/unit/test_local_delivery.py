"""Local delivery does what Lambda's SQS event source mapping does with a handler's response and failures."""

import json

import boto3
import pytest
from moto import mock_aws

from seqlane.local.delivery import QueuePump
from seqlane.local.stack import FunctionSpec, LocalStack, QueueSubscription
from tests.conftest import REGION

HANDLER = """
def handler(event, context):
    bodies = [json.loads(r["body"]) for r in event["Records"]]
    if any(b.get("crash") for b in bodies):
        raise RuntimeError("handler crashed")
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]}
                                  for r, b in zip(event["Records"], bodies) if b.get("fail")]}
"""


@pytest.fixture
def queues(aws_credentials, tmp_path):
    (tmp_path / "app.py").write_text("import json\n" + HANDLER)
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue = sqs.create_queue(
            QueueName="work",
            Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"})},
        )["QueueUrl"]

        def pump(report_batch_item_failures: bool) -> QueuePump:
            function = FunctionSpec("Fn", "fn", tmp_path, "app.handler", {})
            subscription = QueueSubscription(
                queue, "arn:aws:sqs:eu-west-2:123456789012:work", function, 10, report_batch_item_failures
            )
            stack = LocalStack(REGION, tmp_path, {}, {}, {"Fn": function}, [subscription])
            return QueuePump(stack)

        def depth(url: str) -> int:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
            return int(attributes["Attributes"]["ApproximateNumberOfMessages"])

        yield sqs, queue, dlq, pump, depth


def test_local_delivery_reported_failures_are_retried_then_dead_lettered(queues):
    # Given one good and one failing message, with partial batch responses on
    sqs, queue, dlq, pump, depth = queues
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"ok": True}))
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"fail": True}))

    # When the queue is drained
    pump(report_batch_item_failures=True).drain()

    # Then the good one is gone and the failing one ended in the DLQ after its three receives
    assert (depth(queue), depth(dlq)) == (0, 1)
    [dead] = sqs.receive_message(QueueUrl=dlq, AttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert json.loads(dead["Body"]) == {"fail": True}
    assert int(dead["Attributes"]["ApproximateReceiveCount"]) >= 3


def test_local_delivery_ignores_the_response_without_report_batch_item_failures(queues):
    # Given a message the handler reports as failed, but the mapping does not read partial responses
    sqs, queue, dlq, pump, depth = queues
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"fail": True}))

    # When the queue is drained, then the invocation succeeded, so the message is deleted
    pump(report_batch_item_failures=False).drain()
    assert (depth(queue), depth(dlq)) == (0, 0)


def test_local_delivery_crashing_handler_returns_the_whole_batch(queues):
    # Given a batch whose handler raises
    sqs, queue, dlq, pump, depth = queues
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"ok": True}))
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"crash": True}))

    # When the queue is drained, then nothing was deleted: both went to the DLQ after their retries
    pump(report_batch_item_failures=True).drain()
    assert (depth(queue), depth(dlq)) == (0, 2)
