"""The whole pipeline on the embedded AWS (moto, in-process): template.yaml deployed, the real handlers fed by
the real queues, the real ASL executed, Batch jobs run by the real job runner.

    with LocalPipeline(template_path, region, scratch=..., job_environment={"DRAGEN_BIN": ...}) as pipeline:
        pipeline.upload("RUN1/S1_S1_L001_R1_001.fastq.gz", data)
        pipeline.run_until_idle()
        pipeline.seqlane_events()
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer
from moto import mock_aws

from seqlane.local import batch, moto_asl
from seqlane.local.delivery import QueuePump, run_until_idle
from seqlane.local.stack import REFERENCE_BUCKET, LocalStack, deploy

MOTO_CONFIG = {
    "stepfunctions": {"execute_state_machine": True},
    "batch": {"use_docker": False},
    "lambda": {"use_docker": False},
}
_OBSERVER = "seqlane-local-event-observer"


class LocalPipeline:
    def __init__(
        self,
        template_path: Path,
        region: str,
        scratch: Path,
        job_environment: dict[str, str] | None = None,
        reference_files: dict[str, bytes] | None = None,
    ) -> None:
        self.template_path = template_path
        self.region = region
        self.scratch = scratch
        self.job_environment = job_environment or {}
        self.reference_files = reference_files or {}
        self._mock = mock_aws(config=MOTO_CONFIG)
        self._undo_batch = None
        self.stack: LocalStack | None = None

    def __enter__(self) -> LocalPipeline:
        self._mock.start()
        try:
            moto_asl.install()
            self.stack = deploy(self.template_path, self.region)
            self.s3 = boto3.client("s3", region_name=self.region)
            self.dynamodb = boto3.client("dynamodb", region_name=self.region)
            self.sfn = boto3.client("stepfunctions", region_name=self.region)
            for key, body in self.reference_files.items():
                self.s3.put_object(Bucket=REFERENCE_BUCKET, Key=f"reference/{key}", Body=body)
            self._undo_batch = batch.install(
                batch.in_process_runner(
                    str(self.scratch), {"SEQLANE_SCRATCH": str(self.scratch), **self.job_environment}
                )
            )
            self.pump = QueuePump(self.stack)
            self._observe_seqlane_events()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        if self._undo_batch:
            self._undo_batch()
        self._mock.stop()

    # ---- what a user or test does
    @property
    def ingest_bucket(self) -> str:
        return self.stack.outputs["IngestBucketName"]

    @property
    def results_bucket(self) -> str:
        return self.stack.outputs["ResultsBucketName"]

    def upload(self, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.ingest_bucket, Key=key, Body=body)

    def run_until_idle(self, timeout: float = 120.0) -> None:
        run_until_idle(self.stack, self.pump, timeout)

    def executions(self) -> list[dict[str, Any]]:
        arn = self.stack.outputs["StateMachineArn"]
        return self.sfn.list_executions(stateMachineArn=arn)["executions"]

    def catalog_items(self, run_id: str) -> list[dict[str, Any]]:
        deserializer = TypeDeserializer()
        response = self.dynamodb.query(
            TableName=self.stack.outputs["CatalogTableName"],
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"RUN#{run_id}"}},
        )
        return [{k: deserializer.deserialize(v) for k, v in item.items()} for item in response["Items"]]

    def sample(self, run_id: str, sample_id: str) -> dict[str, Any]:
        return next(item for item in self.catalog_items(run_id) if item["sk"] == f"SAMPLE#{sample_id}")

    # ---- seqlane events, as an analyst subscribed to the bus would see them
    def _observe_seqlane_events(self) -> None:
        sqs = boto3.client("sqs", region_name=self.region)
        events = boto3.client("events", region_name=self.region)
        self._observer_url = sqs.create_queue(QueueName=_OBSERVER)["QueueUrl"]
        observer_arn = sqs.get_queue_attributes(QueueUrl=self._observer_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        bus = self.stack.outputs["EventBusName"]
        events.put_rule(Name=_OBSERVER, EventBusName=bus, EventPattern=json.dumps({"source": ["seqlane"]}))
        events.put_targets(Rule=_OBSERVER, EventBusName=bus, Targets=[{"Id": "observer", "Arn": observer_arn}])
        self.observed_events: list[dict[str, Any]] = []

    def seqlane_events(self) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs", region_name=self.region)
        while True:
            messages = sqs.receive_message(QueueUrl=self._observer_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return self.observed_events
            for message in messages:
                self.observed_events.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self._observer_url, ReceiptHandle=message["ReceiptHandle"])
