"""A client of the embedded AWS (a `LocalHost`, here or in the background): what a sequencer, an operator and an
analyst do against the stack, over the AWS APIs only, so the same code works against a host in this process or one
started by `seqlane local up`.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer

from seqlane.local.host import LOCAL_CREDENTIALS
from seqlane.local.stack import REFERENCE_BUCKET, STACK_NAME

REFERENCE_PREFIX = "reference/"
_deserializer = TypeDeserializer()


class StackNotFound(RuntimeError):
    """No seqlane local stack answers at the endpoint."""


@dataclass(frozen=True)
class Upload:
    key: str
    size: int
    duplicated: bool


def _plain(value: Any) -> Any:
    """DynamoDB's decimals back to int/float, for JSON."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {name: _plain(item) for name, item in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(item) for item in value]
    return value


class LocalClient:
    def __init__(self, endpoint: str, region: str, jobs_dir: Path | None = None) -> None:
        self.endpoint = endpoint
        self.region = region
        self.jobs_dir = jobs_dir  # where the host keeps job logs, when it is on this machine
        session = boto3.session.Session(
            aws_access_key_id=LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=LOCAL_CREDENTIALS["AWS_SESSION_TOKEN"],
            region_name=region,
        )
        self._client = lambda service: session.client(service, endpoint_url=endpoint)
        self.s3 = self._client("s3")
        self.sqs = self._client("sqs")
        self.sfn = self._client("stepfunctions")
        self.events = self._client("events")
        self.dynamodb = self._client("dynamodb")
        cloudformation = self._client("cloudformation")
        try:
            stack = cloudformation.describe_stacks(StackName=STACK_NAME)["Stacks"][0]
            summaries = [
                resource
                for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=STACK_NAME)
                for resource in page["StackResourceSummaries"]
            ]
        except Exception as err:
            raise StackNotFound(f"no seqlane local stack at {endpoint} in {region}: {err}") from err
        self.outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
        self.state_machines = [r["PhysicalResourceId"] for r in summaries if r["ResourceType"].endswith("StateMachine")]
        self._work_queues, self.dead_letter_queues = self._queues(
            [r["PhysicalResourceId"] for r in summaries if r["ResourceType"] == "AWS::SQS::Queue"]
        )
        self._observer: tuple[str, str, str] | None = None
        self._events: list[dict[str, Any]] = []

    def _queues(self, urls: list[str]) -> tuple[list[str], list[str]]:
        """Work queues, and the dead-letter queues they (and the rules' targets) redrive to."""
        arns, dead_letter_arns = {}, set()
        for url in urls:
            attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "RedrivePolicy"])[
                "Attributes"
            ]
            arns[url] = attributes["QueueArn"]
            if "RedrivePolicy" in attributes:
                dead_letter_arns.add(json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"])
        work = [url for url in urls if arns[url] not in dead_letter_arns]
        return work, [url for url in urls if arns[url] in dead_letter_arns]

    @property
    def ingest_bucket(self) -> str:
        return self.outputs["IngestBucketName"]

    @property
    def results_bucket(self) -> str:
        return self.outputs["ResultsBucketName"]

    # ---- the reference the stack's route points at
    def put_reference(self, fasta: Path) -> None:
        """Replace the local reference with `fasta` (and its .fai when present)."""
        stale = self.s3.list_objects_v2(Bucket=REFERENCE_BUCKET, Prefix=REFERENCE_PREFIX).get("Contents", [])
        for item in stale:
            self.s3.delete_object(Bucket=REFERENCE_BUCKET, Key=item["Key"])  # the embedded reference bucket only
        self.s3.upload_file(str(fasta), REFERENCE_BUCKET, f"{REFERENCE_PREFIX}genome.fa")
        index = fasta.with_name(fasta.name + ".fai")
        if index.is_file():
            self.s3.upload_file(str(index), REFERENCE_BUCKET, f"{REFERENCE_PREFIX}genome.fa.fai")

    # ---- a sequencer's uploader
    def upload_run(self, run_dir: Path, seed: int = 0, duplicate_share: float = 0.2) -> list[Upload]:
        """Upload every file of `run_dir` under `<run folder name>/`, one by one in a shuffled order with the
        completion markers last (as a sequencer finishes), and deliver the S3 event of some uploads twice, as
        S3's at-least-once delivery does."""
        from seqlane.naming import RUN_COMPLETION_MARKERS

        rng = random.Random(seed)  # noqa: S311 - a reproducible delivery order, not security
        files = sorted(path for path in run_dir.rglob("*") if path.is_file())
        rng.shuffle(files)
        files.sort(key=lambda path: path.relative_to(run_dir).as_posix() in RUN_COMPLETION_MARKERS)
        uploads = []
        for path in files:
            key = f"{run_dir.name}/{path.relative_to(run_dir).as_posix()}"
            self.s3.upload_file(str(path), self.ingest_bucket, key)
            duplicated = rng.random() < duplicate_share
            if duplicated:
                self.redeliver_upload_event(key)
            uploads.append(Upload(key=key, size=path.stat().st_size, duplicated=duplicated))
        return uploads

    def redeliver_upload_event(self, key: str) -> None:
        """The "Object Created" event of an existing object once more, through the default bus and its rules, as
        S3 writes it (the key URL-encoded)."""
        from seqlane.uploads import event_key

        head = self.s3.head_object(Bucket=self.ingest_bucket, Key=key)
        detail = {
            "version": "0",
            "bucket": {"name": self.ingest_bucket},
            "object": {
                "key": event_key(key),
                "size": head["ContentLength"],
                "etag": head["ETag"].strip('"'),
                "version-id": head.get("VersionId"),
                "sequencer": "617f08299329d189",
            },
            "reason": "PutObject",
        }
        response = self.events.put_events(
            Entries=[{"Source": "aws.s3", "DetailType": "Object Created", "Detail": json.dumps(detail)}]
        )
        if response.get("FailedEntryCount"):
            raise RuntimeError(f"redelivery of {key} failed: {response['Entries']}")

    # ---- an analyst subscribed to the seqlane bus
    def observe_events(self, run_id: str | None = None) -> None:
        """Subscribe a queue to the run's (or every run's) seqlane events, as a downstream consumer would."""
        name = f"seqlane-observer-{uuid.uuid4().hex[:12]}"
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = self.outputs["EventBusName"]
        pattern: dict[str, Any] = {"source": ["seqlane"]}
        if run_id is not None:
            pattern["detail"] = {"run_id": [run_id]}
        self.events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
        self.events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "observer", "Arn": arn}])
        self._observer = (name, url, bus)

    def observed_events(self) -> list[dict[str, Any]]:
        """Every seqlane event observed so far, in arrival order."""
        if self._observer is None:
            return self._events
        _, url, _ = self._observer
        while messages := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                self._events.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return self._events

    def stop_observing(self) -> None:
        if self._observer is None:
            return
        name, url, bus = self._observer
        self.events.remove_targets(Rule=name, EventBusName=bus, Ids=["observer"])
        self.events.delete_rule(Name=name, EventBusName=bus)
        self.sqs.delete_queue(QueueUrl=url)
        self._observer = None

    # ---- an operator
    def pending_work(self) -> int:
        """Messages queued or being handled, plus running executions: 0 when nothing more will happen by itself."""
        queued = 0
        for url in self._work_queues:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            queued += sum(int(value) for value in attributes.values())
        running = sum(
            len(self.sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"])
            for arn in self.state_machines
        )
        return queued + running

    def dead_letters(self) -> int:
        return sum(
            int(
                self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                    "Attributes"
                ]["ApproximateNumberOfMessages"]
            )
            for url in self.dead_letter_queues
        )

    def wait_until_idle(
        self,
        timeout: float = 300.0,
        poll_seconds: float = 0.1,
        settle_polls: int = 3,
        on_poll: Callable[[], None] | None = None,
    ) -> None:
        """Until nothing is queued or running for `settle_polls` polls in a row."""
        deadline = time.monotonic() + timeout
        quiet = 0
        while quiet < settle_polls:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the local stack is still busy after {timeout:.0f} s")
            if on_poll:
                on_poll()
            quiet = quiet + 1 if self.pending_work() == 0 else 0
            time.sleep(poll_seconds)

    def executions(self) -> list[dict[str, Any]]:
        return [
            execution
            for arn in self.state_machines
            for page in self.sfn.get_paginator("list_executions").paginate(stateMachineArn=arn)
            for execution in page["executions"]
        ]

    def catalog_items(self, run_id: str) -> list[dict[str, Any]]:
        pages = self.dynamodb.get_paginator("query").paginate(
            TableName=self.outputs["CatalogTableName"],
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"RUN#{run_id}"}},
            ConsistentRead=True,
        )
        return [
            _plain({name: _deserializer.deserialize(value) for name, value in raw.items()})
            for page in pages
            for raw in page["Items"]
        ]

    def download(self, uri: str, path: Path) -> Path:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.s3.download_file(bucket, key, str(path))
        return path
