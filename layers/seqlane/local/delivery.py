"""Local event delivery: what Lambda's SQS event source mappings do in AWS, done in-process.

The handlers are loaded from the template's CodeUri/Handler and called with the function's own environment
(as moto's Lambda resolved it from the template), with SQS-shaped events and partial batch responses honoured.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import boto3

from seqlane.local.stack import FunctionSpec, LocalStack, QueueSubscription

_ENVIRON_LOCK = threading.RLock()
logger = logging.getLogger(__name__)


@dataclass
class LocalLambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    timeout_seconds: int = 60
    aws_request_id: str = ""
    invoked_function_arn: str = ""
    log_group_name: str = ""
    log_stream_name: str = "local"
    function_version: str = "$LATEST"

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class LocalFunction:
    """One template function, loaded once, invoked with its own environment variables."""

    def __init__(self, spec: FunctionSpec, region: str) -> None:
        self.spec = spec
        self.region = region
        module_file, _, attribute = spec.handler.rpartition(".")
        with self._environment():  # as in Lambda, the function's environment is there at import
            self._handler: Callable[[dict, Any], Any] = getattr(self._load(module_file), attribute)

    def _load(self, module_file: str) -> ModuleType:
        path = self.spec.code_dir / f"{module_file.replace('.', '/')}.py"
        name = f"seqlane_local_fn_{self.spec.logical_id}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        assert module_spec is not None and module_spec.loader is not None  # a .py path always has its loader
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        return module

    def invoke(self, event: dict) -> Any:
        context = LocalLambdaContext(
            function_name=self.spec.physical_name,
            aws_request_id=str(uuid.uuid4()),
            invoked_function_arn=f"arn:aws:lambda:{self.region}:123456789012:function:{self.spec.physical_name}",
        )
        with self._environment():
            return self._handler(event, context)

    @contextmanager
    def _environment(self) -> Iterator[None]:
        environment = {
            **self.spec.environment,
            "AWS_REGION": self.region,
            "AWS_LAMBDA_FUNCTION_NAME": self.spec.physical_name,
            "POWERTOOLS_METRICS_DISABLED": "true",
        }
        with _ENVIRON_LOCK, patched_environ(environment):
            yield


@contextmanager
def patched_environ(values: dict[str, str], cleared: tuple[str, ...] = ()) -> Iterator[None]:
    """Set `values` and unset `cleared` in os.environ, and put everything back afterwards."""
    saved = {name: os.environ.get(name) for name in (*values, *cleared)}
    for name in cleared:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping hands to a function."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


class QueuePump:
    """Delivers queued messages to the subscribed functions until the queues are empty."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.sqs = boto3.client("sqs", region_name=stack.region)
        self.functions = {
            subscription.function.logical_id: LocalFunction(subscription.function, stack.region)
            for subscription in stack.subscriptions
        }

    def deliver_once(self, subscription: QueueSubscription) -> int:
        response = self.sqs.receive_message(
            QueueUrl=subscription.queue_url,
            MaxNumberOfMessages=min(subscription.batch_size, 10),
            AttributeNames=["All"],
            WaitTimeSeconds=0,
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        event = sqs_event(messages, subscription.queue_arn, self.stack.region)
        try:
            result = self.functions[subscription.function.logical_id].invoke(event) or {}
            # As Lambda: the response is read only with ReportBatchItemFailures; otherwise success deletes all.
            reported = result.get("batchItemFailures", []) if subscription.report_batch_item_failures else []
            failed = {item["itemIdentifier"] for item in reported}
        except Exception:  # as in Lambda, a failed invocation returns the whole batch to the queue
            logger.exception("local invocation of %s failed", subscription.function.logical_id)
            failed = {message["MessageId"] for message in messages}
        for message in messages:
            if message["MessageId"] in failed:
                # As Lambda does: the message becomes visible again and counts towards the DLQ redrive.
                self.sqs.change_message_visibility(
                    QueueUrl=subscription.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            else:
                self.sqs.delete_message(QueueUrl=subscription.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def drain(self) -> int:
        delivered = 0
        while True:
            round_delivered = sum(self.deliver_once(subscription) for subscription in self.stack.subscriptions)
            if not round_delivered:
                return delivered
            delivered += round_delivered
