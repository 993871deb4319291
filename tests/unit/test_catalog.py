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
from moto import mock_aws

from seqlane.adapters.aws import EventBridgePublisher, S3ObjectStore
from seqlane.adapters.catalog_table import DynamoCatalog
from seqlane.catalog import CatalogService, NotASeqlaneJob, UnusableEvent
from seqlane.manifest import RESULT_FILE_NAME, FastqFile, attempt_prefix, output_prefix
from tests.conftest import REGION, ROOT

RUN, SAMPLE, VERSION = "241121_A01234_0042_BHXXXXXXXX", "NA12878", "3f2a9c0d1e4b5a67"  # as in events/*.json
JOB_ID = "8d1f7a52-6b0e-4c37-9f1e-2a5d3c4b6e70"  # the succeeded job of events/
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

    def put_result(
        self,
        sample: str = SAMPLE,
        version: str = VERSION,
        *,
        job_id: str = JOB_ID,
        attempt: int = 1,
        body: str | None = None,
        **changes: Any,
    ) -> str:
        """The runner's result file of one job attempt (a successful one unless `changes` say otherwise)."""
        result = {"schema": "seqlane.result/1", "run_id": RUN, "sample_id": sample, "version": version}
        result.update(status="SUCCEEDED", error=None, engine="dragen", exit_code=0, outputs=outputs(sample, version))
        result.update(job_id=job_id, attempt=attempt, inputs=[{"key": "k", "reads": 900}])
        result.update(reconciliation={"staged_reads": 1800, "engine_reads": 1800, "ok": True, "detail": "equal"})
        result.update(changes)
        key = attempt_prefix(RUN, sample, version, job_id, attempt) + RESULT_FILE_NAME
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=(json.dumps(result) if body is None else body).encode())
        return f"s3://{BUCKET}/{key}"

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


def job_id_of(status: str, sample: str = SAMPLE, version: str = VERSION) -> str:
    return job_detail(status, sample, version)["jobId"]


FAILED_JOB_ID = "b73e19c4-05d2-4a8f-8e6b-d14f2c9a0e58"  # the failed job of events/


def execution_event(status: str, sample: str = SAMPLE, version: str = VERSION, **detail: Any) -> dict[str, Any]:
    """Step Functions' "Execution Status Change" detail for the sample's analysis execution."""
    name = f"{RUN}-{sample}-{version}"
    execution_input = {"run_id": RUN, "sample_id": sample, "version": version, "attempt": 1}
    execution_input["manifest_uri"] = manifest_uri(sample, version)
    return {
        "executionArn": f"arn:aws:states:{REGION}:123456789012:execution:seqlane-analysis:{name}",
        "stateMachineArn": f"arn:aws:states:{REGION}:123456789012:stateMachine:seqlane-analysis",
        "name": name,
        "status": status,
        "input": json.dumps(execution_input),
        "error": None,
        "cause": None,
        **detail,
    }


def failed_job_cause(job_id: str = FAILED_JOB_ID, exit_code: int = 1) -> str:
    """The cause of a failed `.sync` Batch task: the job's description, PascalCase, as AWS gives it."""
    job = {"JobId": job_id, "Status": "FAILED", "StatusReason": "Essential container in task exited"}
    job |= {"Attempts": [{"Container": {"ExitCode": exit_code}}], "Container": {"ExitCode": exit_code}}
    return json.dumps(job)


def test_catalog_service_catalogs_succeeded_job_and_publishes_analysis_succeeded_once(world):
    # Given a claimed sample whose DRAGEN job wrote its result file in its attempt folder
    result_uri = world.put_result()

    # When the job's SUCCEEDED state change is handled, twice
    summary = world.service.handle_job_state(job_detail("SUCCEEDED"))
    again = world.service.handle_job_state(job_detail("SUCCEEDED"))

    # Then every output is a catalog row keyed OUTPUT#<sample>#<version>#<path>
    rows = {
        r["sk"]: {"path": r["path"], "uri": r["uri"], "size": r["size"], "sha256": r["sha256"]}
        for r in world.items("OUTPUT#")
    }
    assert rows == {f"OUTPUT#{SAMPLE}#{VERSION}#{o['path']}": o for o in outputs()}
    # And the sample SUCCEEDED with its output count, job, result file and the runner's read reconciliation
    sample = world.sample_item()
    assert (sample["status"], sample["output_count"], sample["exit_code"]) == ("SUCCEEDED", 3, 0)
    assert sample["job_id"] == JOB_ID
    assert sample["result_uri"] == result_uri
    assert result_uri == f"s3://{BUCKET}/results/{RUN}/{SAMPLE}/{VERSION}/{JOB_ID}/1/{RESULT_FILE_NAME}"
    assert sample["reconciliation"]["ok"] is True and sample["inputs"] == [{"key": "k", "reads": 900}]
    assert sample["batch_attempts"][0]["exit_code"] == 0
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
    assert event["detail"]["reads"] == 1800
    assert summary == {"status": "SUCCEEDED", "job_id": JOB_ID, "outputs": 3, "published": True}
    assert again["published"] is False


def test_catalog_service_failed_job_records_and_publishes_the_runners_own_reason(world):
    # Given a failed job whose runner wrote its one-line reason in its result file
    reason = "HG002 L001: R1 has 900 reads, R2 has 676 (run/HG002_S1_L001_R1_001.fastq.gz, ...R2...)"
    world.put_result(job_id=FAILED_JOB_ID, status="FAILED", error=reason, runner_exit_code=5, outputs=[])

    # When the job's FAILED state change is handled
    summary = world.service.handle_job_state(job_detail("FAILED"))

    # Then the sample is FAILED with the runner's reason (not Batch's "Essential container in task exited")
    sample = world.sample_item()
    assert (sample["status"], sample["failure_reason"], sample["exit_code"]) == ("FAILED", reason, 1)
    assert sample["status_reason"] == "Essential container in task exited"
    assert sample["runner_exit_code"] == 5
    # And one AnalysisFailed carries that reason as its cause
    (event,) = world.published()
    assert event["detail-type"] == "AnalysisFailed"
    assert (event["detail"]["cause"], event["detail"]["status"], event["detail"]["job_id"]) == (
        reason,
        "FAILED",
        FAILED_JOB_ID,
    )
    assert summary["published"] is True


def test_catalog_service_failed_job_without_result_file_names_batchs_reason_and_exit_code(world):
    # Given a failed job that wrote no result file (the container never started the runner)
    # When its FAILED state change is handled
    world.service.handle_job_state(job_detail("FAILED"))

    # Then the cause says what Batch said, the exit code, and that there is no result file
    sample = world.sample_item()
    assert sample["status"] == "FAILED"
    assert sample["failure_reason"] == (
        "Batch: Essential container in task exited (exit code 1); no runner result file (is missing)"
    )
    assert [e["detail"]["cause"] for e in world.published()] == [sample["failure_reason"]]


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (None, "is missing"),
        ({"body": "{not json"}, "is not JSON"),
        ({"body": "[1, 2]"}, "is not a JSON object"),
        ({"outputs": []}, "lists no outputs"),
        ({"reconciliation": None}, "does not show the reads reconciled (no reconciliation recorded)"),
        ({"reconciliation": {"ok": False, "detail": "staged 1800, engine 1700"}}, "staged 1800, engine 1700"),
        ({"schema": "other/1"}, "has schema 'other/1'"),
        ({"outputs": [{"path": "a.bam"}]}, "an output without path, uri, size and sha256"),
    ],
    ids=["missing", "not-json", "not-object", "no-outputs", "no-reconciliation", "not-reconciled", "schema", "output"],
)
def test_catalog_service_succeeded_job_with_unusable_result_file_fails_the_analysis(world, result, expected):
    # Given a job that SUCCEEDED in Batch, but whose result file is missing, not JSON or incomplete
    if result is not None:
        world.put_result(**result)

    # When its SUCCEEDED state change is handled
    summary = world.service.handle_job_state(job_detail("SUCCEEDED"))

    # Then the analysis is FAILED (not stuck SUBMITTED, not retried) with that cause, published as AnalysisFailed
    sample = world.sample_item()
    assert sample["status"] == "FAILED"
    assert "the job succeeded but its result file" in sample["failure_reason"]
    assert expected in sample["failure_reason"]
    (event,) = world.published()
    assert (event["detail-type"], event["detail"]["cause"]) == ("AnalysisFailed", sample["failure_reason"])
    # And nothing was cataloged as an output of a successful analysis
    assert world.items("OUTPUT#") == []
    assert summary["published"] is True


@pytest.mark.parametrize("order", ["batch-first", "execution-first"])
def test_catalog_service_job_and_execution_failures_publish_once_with_the_same_cause(world, order):
    # Given a failed job with the runner's reason, and both events that end its attempt
    world.put_result(job_id=FAILED_JOB_ID, status="FAILED", error="reads do not reconcile", outputs=[])
    job = job_detail("FAILED")
    execution = execution_event("FAILED", error="States.TaskFailed", cause=failed_job_cause())

    # When they arrive in either order, each twice
    handlers = [lambda: world.service.handle_job_state(job), lambda: world.service.handle_execution_status(execution)]
    for handle in handlers if order == "batch-first" else handlers[::-1]:
        handle()
        handle()

    # Then the sample is FAILED once, with the runner's reason, and one AnalysisFailed was published
    assert world.sample_item()["failure_reason"] == "reads do not reconcile"
    assert [(e["detail-type"], e["detail"]["cause"]) for e in world.published()] == [
        ("AnalysisFailed", "reads do not reconcile")
    ]


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ("TIMED_OUT", "the analysis passed the state machine's time limit and was stopped"),
        ("ABORTED", "the execution was stopped (aborted) before the analysis finished"),
    ],
)
def test_catalog_service_timed_out_or_stopped_execution_is_final_and_announced(world, status, reason):
    # Given an analysis whose execution timed out or was stopped (no Batch event will ever come)
    # When Step Functions' status change is handled
    world.service.handle_execution_status(execution_event(status))

    # Then the sample says so, and AnalysisFailed names the status
    sample = world.sample_item()
    assert (sample["status"], sample["failure_reason"]) == (status, reason)
    (event,) = world.published()
    assert (event["detail"]["status"], event["detail"]["cause"]) == (status, reason)


def test_catalog_service_execution_that_could_not_submit_its_job_says_why(world):
    # Given an execution that failed before any job ran (Batch refused the submission)
    execution = execution_event("FAILED", error="Batch.ClientException", cause="Job queue does not exist")

    # When it is handled, Then the cause is Step Functions' error and cause
    world.service.handle_execution_status(execution)
    assert world.sample_item()["failure_reason"] == "Batch.ClientException: Job queue does not exist"


def test_catalog_service_late_success_never_overwrites_a_final_state(world):
    # Given an analysis that timed out
    world.service.handle_execution_status(execution_event("TIMED_OUT"))
    world.published()

    # When its job's SUCCEEDED event arrives late
    world.put_result()
    summary = world.service.handle_job_state(job_detail("SUCCEEDED"))

    # Then the sample stays TIMED_OUT and nothing more is published
    assert world.sample_item()["status"] == "TIMED_OUT"
    assert world.published() == []
    assert summary["published"] is False


def test_catalog_service_events_of_an_older_version_or_attempt_change_nothing(world):
    # Given a sample that moved on to version v2 (a re-upload), and to its second attempt
    world.catalog.supersede_manifest(
        RUN, SAMPLE, previous=VERSION, version="v2", manifest_uri=manifest_uri(SAMPLE, "v2"), execution_name="x"
    )
    world.dynamodb.update_item(
        TableName=TABLE,
        Key={"pk": {"S": f"RUN#{RUN}"}, "sk": {"S": f"SAMPLE#{SAMPLE}"}},
        UpdateExpression="SET attempt = :two",
        ExpressionAttributeValues={":two": {"N": "2"}},
    )
    world.put_result()

    # When the old version's job SUCCEEDED event, and the v2 attempt 1 execution's FAILED event arrive
    world.service.handle_job_state(job_detail("SUCCEEDED"))
    world.service.handle_execution_status(execution_event("FAILED", version="v2"))

    # Then the sample is still MANIFESTED for v2 attempt 2, and nothing was published
    sample = world.sample_item()
    assert (sample["status"], sample["manifest_version"]) == ("MANIFESTED", "v2")
    assert world.published() == []


def test_catalog_service_event_for_an_unknown_sample_publishes_nothing(world):
    # Given events for a sample the catalog has never seen
    world.put_result("NA00000")
    world.service.handle_job_state(job_detail("SUCCEEDED", "NA00000"))
    world.service.handle_execution_status(execution_event("ABORTED", "NA00000"))

    # Then nothing is published (the outcome write's condition needs the sample's version)
    assert world.published() == []


def test_catalog_service_crash_before_publishing_publishes_on_redelivery(world, monkeypatch):
    # Given the event bus fails once, right after the outcome was written
    world.put_result()
    original = world.service.events.publish
    calls = []

    def flaky(detail_type, detail):
        calls.append(detail_type)
        if len(calls) == 1:
            raise RuntimeError("bus unavailable")
        original(detail_type, detail)

    monkeypatch.setattr(world.service.events, "publish", flaky)

    # When the SUCCEEDED event is delivered, crashes, and is delivered again (then a third time)
    with pytest.raises(RuntimeError, match="bus unavailable"):
        world.service.handle_job_state(job_detail("SUCCEEDED"))
    world.service.handle_job_state(job_detail("SUCCEEDED"))
    world.service.handle_job_state(job_detail("SUCCEEDED"))

    # Then AnalysisSucceeded was published once the bus came back, and not again after that
    assert [e["detail-type"] for e in world.published()] == ["AnalysisSucceeded"]
    assert "outcome_published_at" in world.sample_item()


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


@pytest.mark.parametrize(
    "change",
    [{"input": "not json"}, {"input": json.dumps({"run_id": RUN})}, {"input": "[]"}, {"status": "PENDING_REDRIVE"}],
    ids=["input-not-json", "input-without-sample", "input-not-object", "unknown-status"],
)
def test_catalog_service_rejects_unusable_execution_events(world, change):
    # Given a Step Functions status change that can never be cataloged
    # When it is handled, Then it is rejected as unusable (the handler does not retry it) and nothing changes
    with pytest.raises(UnusableEvent):
        world.service.handle_execution_status({**execution_event("FAILED"), **change})
    assert world.sample_item()["status"] == "MANIFESTED"


def succeeded_execution(job_id: str = JOB_ID) -> dict[str, Any]:
    """A succeeded execution's event: its output keeps the `.sync` job's JobId, Status and Attempts at $.job."""
    job = {"JobId": job_id, "Status": "SUCCEEDED", "Attempts": [{"Container": {"ExitCode": 0}, "StartedAt": 1}]}
    output = {**json.loads(execution_event("SUCCEEDED")["input"]), "job": job}
    return execution_event("SUCCEEDED", output=json.dumps(output))


def test_catalog_service_succeeded_execution_catalogs_a_job_whose_own_event_never_came(world):
    # Given a job that succeeded and wrote its result file, but whose Batch event was lost
    world.put_result()

    # When only the execution's SUCCEEDED status change arrives (twice), then the job's event late
    first = world.service.handle_execution_status(succeeded_execution())
    world.service.handle_execution_status(succeeded_execution())
    world.service.handle_job_state(job_detail("SUCCEEDED"))

    # Then the sample SUCCEEDED from the same result file, and AnalysisSucceeded was published once
    sample = world.sample_item()
    assert (sample["status"], sample["job_id"], sample["output_count"]) == ("SUCCEEDED", JOB_ID, 3)
    assert sample["batch_attempts"][0]["exit_code"] == 0
    assert [e["detail-type"] for e in world.published()] == ["AnalysisSucceeded"]
    assert first["published"] is True


def test_catalog_service_rejects_a_succeeded_execution_without_its_job(world):
    # Given a succeeded execution whose output names no job, When it is handled, Then it is unusable
    with pytest.raises(UnusableEvent, match="names no Batch job"):
        world.service.handle_execution_status(execution_event("SUCCEEDED", output=json.dumps({"run_id": RUN})))
    assert world.sample_item()["status"] == "MANIFESTED"
