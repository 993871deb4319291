"""S3, Step Functions and EventBridge adapters."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import ListObjectsV2RequestTypeDef
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

SEQLANE_EVENT_SOURCE = "seqlane"
# Without s3:ListBucket, S3 answers 403 rather than 404 for a missing key, so both mean "not there for us".
_MISSING_CODES = frozenset({"404", "NoSuchKey", "403", "AccessDenied"})


class S3ObjectStore:
    def __init__(self, client=None) -> None:
        self.client = client or boto3.client("s3")

    def put_text(self, bucket: str, key: str, text: str, content_type: str) -> None:
        """Write once (`If-None-Match: *`; the results bucket requires it). seqlane's keys are content-addressed,
        so an object already at the key holds this text: a repeated write (a redelivered event) is done already."""
        try:
            self.client.put_object(
                Bucket=bucket, Key=key, Body=text.encode(), ContentType=content_type, IfNoneMatch="*"
            )
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("PreconditionFailed", "412"):
                raise

    def list_page(self, bucket: str, prefix: str, token: str | None, max_keys: int) -> tuple[list[str], str | None]:
        request: ListObjectsV2RequestTypeDef = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": max_keys}
        if token:
            request["ContinuationToken"] = token
        response = self.client.list_objects_v2(**request)
        keys = [obj["Key"] for obj in response.get("Contents", [])]
        return keys, response.get("NextContinuationToken") if response.get("IsTruncated") else None

    def exists(self, bucket: str, key: str) -> bool:
        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            if error.response["Error"]["Code"] in _MISSING_CODES:
                return False
            raise
        return True

    def get_text(self, bucket: str, key: str) -> str:
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read().decode()

    def get_text_if_exists(self, bucket: str, key: str) -> str | None:
        """The object's text, or None when it is not there (or not readable as UTF-8 text, said as such)."""
        try:
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as error:
            if error.response["Error"]["Code"] in _MISSING_CODES:
                return None
            raise
        return body.decode("utf-8", errors="replace")


class StepFunctionsOrchestrator:
    def __init__(self, state_machine_arn: str, client=None) -> None:
        self.state_machine_arn = state_machine_arn
        self.client = client or boto3.client("stepfunctions")

    def start_analysis(self, execution_name: str, execution_input: dict[str, Any]) -> bool:
        try:
            self.client.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=execution_name,
                input=json.dumps(execution_input, sort_keys=True),
            )
            return True
        except ClientError as error:
            # The name is derived from the manifest version: an existing one means this version already started.
            if error.response["Error"]["Code"] == "ExecutionAlreadyExists":
                return False
            raise


class EventBridgePublisher:
    def __init__(self, event_bus_name: str, client=None) -> None:
        self.event_bus_name = event_bus_name
        self.client = client or boto3.client("events")

    def publish(self, detail_type: str, detail: dict[str, Any]) -> None:
        response = self.client.put_events(
            Entries=[
                {
                    "EventBusName": self.event_bus_name,
                    "Source": SEQLANE_EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": json.dumps(detail, sort_keys=True),
                }
            ]
        )
        if response.get("FailedEntryCount"):
            failure = response["Entries"][0]
            raise RuntimeError(f"{detail_type} not published: {failure.get('ErrorCode')} {failure.get('ErrorMessage')}")


class SqsWorkQueue:
    """Sends work messages to a queue, ten per SendMessageBatch, retrying the entries SQS did not take."""

    _BATCH = 10  # SendMessageBatch's limit

    def __init__(self, queue_url: str, client=None, attempts: int = 5) -> None:
        self.queue_url = queue_url
        self.client = client or boto3.client("sqs")
        self.attempts = attempts

    def send(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), self._BATCH):
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": str(index), "MessageBody": json.dumps(message, sort_keys=True)}
                for index, message in enumerate(messages[start : start + self._BATCH])
            ]
            for _ in range(self.attempts):
                failed = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries).get("Failed", [])
                if not failed:
                    break
                retry = {entry["Id"] for entry in failed if not entry.get("SenderFault")}
                if len(retry) < len(failed):
                    raise RuntimeError(f"work messages refused by SQS: {failed}")
                entries = [entry for entry in entries if entry["Id"] in retry]
            else:
                raise RuntimeError(f"{len(entries)} work messages not sent after {self.attempts} attempts")
