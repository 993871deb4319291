"""CatalogService with the real DynamoDB, S3 and EventBridge adapters on moto: a Batch job's final state ->
catalog rows, sample status and (on success only) an AnalysisSucceeded event, read back through an SQS queue.

The helpers here (seqlane_world, batch_event, put_result, ...) are shared by the handler and schema tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from seqlane.adapters.aws import EventBridgePublisher, S3ObjectStore
from seqlane.adapters.catalog_table import DynamoCatalog
from seqlane.catalog import CatalogService, NotASeqlaneJob
from seqlane.manifest import RESULT_FILE_NAME, FastqFile, output_prefix
from tests.conftest import REGION, ROOT

RUN, SAMPLE, VERSION = "241121_A01234_0042_BHXXXXXXXX", "NA12878", "3f2a9c0d1e4b5a67"  # as in events/*.json
TABLE, BUCKET, BUS = "seqlane-catalog", "seqlane-results", "seqlane-test"
OUTPUT_FILES = {  # path -> (size, sha256)
    f"{SAMPLE}.bam": (48_213_904_112, "1f" * 32),
    f"{SAMPLE}.hard-filtered.vcf.gz": (402_118_877, "a0" * 32),
    f"qc/{SAMPLE}.wgs_coverage_metrics.csv": (2_731, "c3" * 32),
}


def create_catalog_table(dynamodb, name: str = TABLE) -> str:
    dynamodb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    return name


def outputs(sample: str = SAMPLE, version: str = VERSION) -> list[dict[str, Any]]:
    prefix = f"s3://{BUCKET}/{output_prefix(RUN, sample, version)}"
    files = {path.replace(SAMPLE, sample): spec for path, spec in OUTPUT_FILES.items()}
    return [{"path": p, "uri": prefix + p, "size": size, "sha256": sha} for p, (size, sha) in files.items()]


def batch_event(status: str, sample: str = SAMPLE, version: str = VERSION) -> dict[str, Any]:
    """The sample EventBridge event of events/, for another sample version if asked (its own job id then)."""
    name = "failed" if status == "FAILED" else "succeeded"
    event = json.loads((ROOT / "events" / f"batch-job-state-change-{name}.json").read_text())
    detail = event["detail"]
    detail["status"] = status
    if (sample, version) != (SAMPLE, VERSION):
        detail["jobId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{RUN}/{sample}/{version}/{status}"))
        detail["jobName"] = f"{RUN}-{sample}-{version}"
        parameters = {"manifest": manifest_uri(sample, version), "run_id": RUN, "sample_id": sample}
        detail["parameters"] = {**parameters, "version": version}
    return event


def job_detail(status: str, sample: str = SAMPLE, version: str = VERSION) -> dict[str, Any]:
    return batch_event(status, sample, version)["detail"]


def manifest_uri(sample: str, version: str) -> str:
    return f"s3://{BUCKET}/manifests/{RUN}/{sample}/{version}/manifest.json"


def claim_sample(catalog: DynamoCatalog, sample: str = SAMPLE, version: str = VERSION) -> None:
    for read in (1, 2):
        key = f"{RUN}/{sample}_S1_L001_R{read}_001.fastq.gz"
        catalog.record_fastq(RUN, sample, FastqFile(key, 1, read, 1000 + read, f"etag{read}"), f"00{read}")
    catalog.claim_manifest(RUN, sample, version, manifest_uri(sample, version), f"{RUN}-{sample}-{version}")


@dataclass
class World:
    dynamodb: Any
    s3: Any
    sqs: Any
    queue_url: str
    catalog: DynamoCatalog
    service: CatalogService

    def put_result(self, sample: str = SAMPLE, version: str = VERSION) -> None:
        result = {"schema": "seqlane.result/1", "run_id": RUN, "sample_id": sample, "version": version}
        result.update(engine="dragen", exit_code=0, outputs=outputs(sample, version))
        key = output_prefix(RUN, sample, version) + RESULT_FILE_NAME
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(result).encode())

    def items(self, sk_prefix: str) -> list[dict[str, Any]]:
        table = boto3.resource("dynamodb", region_name=REGION).Table(TABLE)
        condition = "pk = :pk AND begins_with(sk, :sk)"
        values = {":pk": f"RUN#{RUN}", ":sk": sk_prefix}
        return table.query(KeyConditionExpression=condition, ExpressionAttributeValues=values)["Items"]

    def sample_item(self, sample: str = SAMPLE) -> dict[str, Any]:
        (item,) = self.items(f"SAMPLE#{sample}")
        return item

    def published(self) -> list[dict[str, Any]]:
        """Every event the bus delivered to the queue so far (drained: call once)."""
        events = []
        while messages := self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages"):
            events += [json.loads(m["Body"]) for m in messages]
            for m in messages:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return events


@contextmanager
def seqlane_world(claimed: tuple[str, ...] = (SAMPLE,)) -> Iterator[World]:
    """Catalog table, results bucket, a custom bus whose seqlane events land in a queue, and claimed samples."""
    with mock_aws():
        dynamodb, s3, events, sqs = (boto3.client(s, region_name=REGION) for s in ("dynamodb", "s3", "events", "sqs"))
        create_catalog_table(dynamodb)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        events.create_event_bus(Name=BUS)
        queue_url = sqs.create_queue(QueueName="seqlane-events")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all-seqlane", EventBusName=BUS, EventPattern=json.dumps({"source": ["seqlane"]}))
        events.put_targets(Rule="all-seqlane", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": queue_arn}])
        catalog = DynamoCatalog(TABLE, dynamodb)
        for sample in claimed:
            claim_sample(catalog, sample)
        service = CatalogService(catalog, S3ObjectStore(s3), EventBridgePublisher(BUS, events), BUCKET)
        yield World(dynamodb, s3, sqs, queue_url, catalog, service)


def analysis_succeeded_detail() -> dict[str, Any]:
    """The detail CatalogService publishes for the SUCCEEDED scenario below."""
    with seqlane_world() as world:
        world.put_result()
        world.service.handle_job_state(job_detail("SUCCEEDED"))
        (event,) = world.published()
        return event["detail"]


@pytest.fixture
def world(aws_credentials) -> Iterator[World]:
    with seqlane_world() as created:
        yield created


def test_catalog_service_catalogs_succeeded_job_and_publishes_analysis_succeeded_once(world):
    # Given a claimed sample whose DRAGEN job wrote its result file
    world.put_result()

    # When the job's SUCCEEDED state change is handled
    summary = world.service.handle_job_state(job_detail("SUCCEEDED"))

    # Then every output is a catalog row keyed OUTPUT#<sample>#<version>#<path>
    rows = {
        r["sk"]: {"path": r["path"], "uri": r["uri"], "size": r["size"], "sha256": r["sha256"]}
        for r in world.items("OUTPUT#")
    }
    assert rows == {f"OUTPUT#{SAMPLE}#{VERSION}#{o['path']}": o for o in outputs()}
    # And the sample SUCCEEDED with its output count, job and result file
    sample = world.sample_item()
    assert (sample["status"], sample["output_count"], sample["exit_code"]) == ("SUCCEEDED", 3, 0)
    assert sample["job_id"] == "8d1f7a52-6b0e-4c37-9f1e-2a5d3c4b6e70"
    assert sample["result_uri"] == f"s3://{BUCKET}/results/{RUN}/{SAMPLE}/{VERSION}/{RESULT_FILE_NAME}"
    # And exactly one AnalysisSucceeded listing the outputs was published on the bus
    (event,) = world.published()
    assert (event["source"], event["detail-type"]) == ("seqlane", "AnalysisSucceeded")
    assert event["detail"]["outputs"] == outputs()
    assert (event["detail"]["run_id"], event["detail"]["sample_id"], event["detail"]["version"]) == (
        RUN,
        SAMPLE,
        VERSION,
    )
    assert event["detail"]["manifest_uri"] == manifest_uri(SAMPLE, VERSION)
    assert summary == {"status": "SUCCEEDED", "job_id": sample["job_id"], "outputs": 3, "published": True}


def test_catalog_service_records_failed_job_without_publishing(world):
    # Given a claimed sample, When its job's FAILED state change is handled
    summary = world.service.handle_job_state(job_detail("FAILED"))

    # Then the sample is FAILED with Batch's reason and the container's exit code
    sample = world.sample_item()
    assert (sample["status"], sample["status_reason"], sample["exit_code"]) == (
        "FAILED",
        "Essential container in task exited",
        1,
    )
    # And nothing is cataloged or published here: the state machine announces AnalysisFailed
    assert world.items("OUTPUT#") == []
    assert world.published() == []
    assert summary["published"] is False


@pytest.mark.parametrize(
    "change",
    [{"parameters": {}}, {"parameters": {"manifest": "s3://x/m.json"}}, {"status": "RUNNING"}],
    ids=["no-parameters", "partial-parameters", "not-final"],
)
def test_catalog_service_rejects_non_seqlane_or_non_final_job(world, change):
    # Given a Batch state change that is not a seqlane job's final state
    detail = {**job_detail("SUCCEEDED"), **change}
    world.put_result()

    # When it is handled, Then it is rejected as NotASeqlaneJob and nothing changes
    with pytest.raises(NotASeqlaneJob):
        world.service.handle_job_state(detail)
    assert world.sample_item()["status"] == "MANIFESTED"
    assert world.published() == []


def test_catalog_service_raises_when_result_file_is_missing(world):
    # Given a claimed sample whose job succeeded but whose result file is not (yet) in the results bucket
    # When the SUCCEEDED state change is handled, Then it raises, so the SQS message is retried
    with pytest.raises(ClientError, match="NoSuchKey"):
        world.service.handle_job_state(job_detail("SUCCEEDED"))

    # And nothing is cataloged or published
    assert world.sample_item()["status"] == "MANIFESTED"
    assert world.items("OUTPUT#") == []
    assert world.published() == []
