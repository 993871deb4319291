"""IngestService on moto DynamoDB, S3 and Step Functions with the real adapters: one manifest and one execution
per sample version, whatever the order or repetition of upload events."""

from __future__ import annotations

import itertools
import json
import random

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from moto import mock_aws

from seqlane.adapters.aws import S3ObjectStore, StepFunctionsOrchestrator
from seqlane.adapters.catalog_table import DynamoCatalog
from seqlane.ingest import Disposition, IngestService, WrongRegion
from seqlane.uploads import UploadedObject
from tests.conftest import REGION

TABLE, INGEST, RESULTS = "catalog", "ingest-bucket", "results-bucket"
RUN = "241121_A01234_0042_BHXXXXXXXX"
SAMPLE = "NA12878"
PASS_MACHINE = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
ONE_LANE = pytest.param((1,), id="one-lane")
TWO_LANES = pytest.param((1, 2), id="two-lanes")


class RecordingPublisher:
    """The seqlane events the service published, in order."""

    def __init__(self) -> None:
        self.published: list[tuple[str, dict]] = []

    def publish(self, detail_type: str, detail: dict) -> None:
        self.published.append((detail_type, detail))

    def of_type(self, detail_type: str) -> list[dict]:
        return [detail for kind, detail in self.published if kind == detail_type]


class Env:
    def __init__(self) -> None:
        self.ddb = boto3.client("dynamodb", region_name=REGION)
        self.s3 = boto3.client("s3", region_name=REGION)
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        self.ddb.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for bucket in (INGEST, RESULTS):
            self.s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        self.state_machine_arn = self.sfn.create_state_machine(
            name="analysis", definition=json.dumps(PASS_MACHINE), roleArn="arn:aws:iam::123456789012:role/x"
        )["stateMachineArn"]
        self.events = RecordingPublisher()
        self.service = IngestService(
            catalog=DynamoCatalog(TABLE, self.ddb),
            store=S3ObjectStore(self.s3),
            orchestrator=StepFunctionsOrchestrator(self.state_machine_arn, self.sfn),
            events=self.events,
            ingest_bucket=INGEST,
            results_bucket=RESULTS,
            region=REGION,
            dragen_version="4.3.6",
            reference_uri="s3://refs/hg38/",
        )
        self._sequencer = itertools.count(0x100)

    def upload(self, relative_path, run=RUN, etag=None, sequencer=None, bucket=INGEST, region=REGION, body=b""):
        """An upload event; each new one gets a later S3 sequencer unless one is given."""
        sequencer = sequencer or format(next(self._sequencer), "X")
        etag = etag or f"etag-{relative_path}"
        if bucket == INGEST:  # the object exists before its event is delivered
            self.s3.put_object(Bucket=bucket, Key=f"{run}/{relative_path}", Body=body)
        return UploadedObject(bucket, f"{run}/{relative_path}", 1024, etag, sequencer, region)

    def fastq(self, lane, read, run=RUN, **kwargs):
        return self.upload(f"{SAMPLE}_S1_L{lane:03d}_R{read}_001.fastq.gz", run=run, **kwargs)

    def marker(self, run=RUN):
        return self.upload("CopyComplete.txt", run=run)

    def executions(self, run=RUN) -> list[str]:
        pages = self.sfn.get_paginator("list_executions").paginate(stateMachineArn=self.state_machine_arn)
        return [e["name"] for page in pages for e in page["executions"] if e["name"].startswith(f"{run}-")]

    def keys(self, bucket, prefix="") -> list[str]:
        return [o["Key"] for o in self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]

    def item(self, sk, run=RUN) -> dict | None:
        item = self.ddb.get_item(TableName=TABLE, Key={"pk": {"S": f"RUN#{run}"}, "sk": {"S": sk}}).get("Item")
        return {name: TypeDeserializer().deserialize(value) for name, value in item.items()} if item else None

    def manifest(self, run=RUN, version=None) -> dict:
        version = version or self.item(f"SAMPLE#{SAMPLE}", run=run)["manifest_version"]
        key = f"manifests/{run}/{SAMPLE}/{version}/manifest.json"
        return json.loads(self.s3.get_object(Bucket=RESULTS, Key=key)["Body"].read())


@pytest.fixture
def env(aws_credentials):
    with mock_aws():
        yield Env()


def complete_sample(env, lanes=(1, 2), run=RUN):
    return [env.fastq(lane, read, run=run) for lane in lanes for read in (1, 2)]


def test_ingest_complete_sample_after_marker_starts_one_execution(env):
    # Given a sample's four FASTQs uploaded
    for upload in complete_sample(env):
        assert env.service.handle(upload).disposition is Disposition.WAITING
    # When the run's completion marker arrives
    outcome = env.service.handle(env.marker())
    # Then one execution started and the manifest and fastq list were written to the results bucket only
    assert outcome.disposition is Disposition.RUN_CLOSED
    assert list(outcome.started) == env.executions()
    assert len(outcome.started) == 1
    version = env.manifest()["version"]
    prefix = f"manifests/{RUN}/{SAMPLE}/{version}/"
    assert sorted(env.keys(RESULTS)) == [prefix + "fastq_list.csv", prefix + "manifest.json"]
    assert sorted(env.keys(INGEST)) == sorted(u.key for u in [*complete_sample(env), env.marker()])
    assert env.item(f"SAMPLE#{SAMPLE}")["manifest_version"] == version


@pytest.mark.parametrize("lanes", [ONE_LANE, TWO_LANES])
def test_ingest_marker_first_starts_when_last_file_arrives(env, lanes):
    # Given the run uploaded, but the completion marker's event handled before any FASTQ's
    *first, last = complete_sample(env, lanes)
    env.service.handle(env.marker())
    # When the files arrive, then nothing starts until the last one
    assert [env.service.handle(u).disposition for u in first] == [Disposition.WAITING] * len(first)
    assert env.executions() == []
    outcome = env.service.handle(last)
    assert outcome.disposition is Disposition.STARTED
    assert list(outcome.started) == env.executions()


@pytest.mark.parametrize("lanes", [ONE_LANE, TWO_LANES])
def test_ingest_duplicated_events_in_any_order_start_once(env, lanes):
    for seed in range(24):
        # Given a one-sample run whose events (FASTQs and marker) are each delivered twice, in a seeded order
        run = f"RUN{seed:03d}"
        events = [*complete_sample(env, lanes, run=run), env.marker(run=run)]
        deliveries = random.Random(seed).sample(events * 2, 2 * len(events))
        order = [u.key.rsplit("/", 1)[-1] for u in deliveries]
        # When all are handled
        for upload in deliveries:
            env.service.handle(upload)
        # Then exactly one execution and one manifest version exist, and the manifest holds every FASTQ
        assert len(env.executions(run)) == 1, order
        versions = {key.split("/")[3] for key in env.keys(RESULTS, f"manifests/{run}/")}
        assert len(versions) == 1, order
        assert sorted(f["key"] for f in env.manifest(run)["files"]) == sorted(e.key for e in events[:-1]), order


def test_ingest_repeated_event_after_start_reports_already_started(env):
    # Given a one-lane sample whose analysis started
    r1, r2, marker = [*complete_sample(env, lanes=(1,)), env.marker()]
    for upload in (r1, r2, marker):
        env.service.handle(upload)
    # When its last FASTQ event is delivered again
    outcome = env.service.handle(r2)
    # Then still one execution, and the outcome says it had already started
    assert len(env.executions()) == 1
    assert outcome.disposition is Disposition.ALREADY_STARTED


def test_ingest_lane_missing_read_waits(env):
    # Given a completed run and lane 2's R1 only
    env.service.handle(env.marker())
    env.service.handle(env.fastq(2, 1))
    # When lane 1 arrives complete
    env.service.handle(env.fastq(1, 1))
    outcome = env.service.handle(env.fastq(1, 2))
    # Then the sample waits, naming the missing read, and nothing started
    assert outcome.disposition is Disposition.WAITING
    assert outcome.detail == "waiting for L002 R2"
    assert env.executions() == []
    assert env.service.catalog.samples_of_run(RUN)[0].status == "RECEIVING"


@pytest.mark.parametrize(
    ("relative_path", "reason"),
    [
        ("Reports/fastq_list.csv", "report"),
        (f"{SAMPLE}_S1_L001_R1_001.fastq.gz.md5", "checksum sidecar"),
        ("Undetermined_S0_L001_R1_001.fastq.gz", "Undetermined"),
        (f"{SAMPLE}_S1_L001_I1_001.fastq.gz", "index read"),
        (f"{SAMPLE}_S1_L009_R1_001.fastq.gz", "L009"),
    ],
)
def test_ingest_unrecognised_file_ignored_and_recorded(env, relative_path, reason):
    # Given an unrecognised file in a run / When handled
    upload = env.upload(relative_path)
    outcome = env.service.handle(upload)
    # Then it is ignored and recorded with its reason
    assert outcome.disposition is Disposition.IGNORED
    assert reason in outcome.detail
    assert reason in env.item(f"IGNORED#{upload.key}")["reason"]
    # And one FileIgnored event says so, even when the event is delivered again
    env.service.handle(upload)
    assert env.events.of_type("FileIgnored") == [{"run_id": RUN, "key": upload.key, "reason": outcome.detail}]
    # And the sample still starts once complete
    for event in [*complete_sample(env), env.marker()]:
        env.service.handle(event)
    assert len(env.executions()) == 1


def test_ingest_event_from_other_region_raises(env):
    with pytest.raises(WrongRegion, match="us-east-1"):
        env.service.handle(env.fastq(1, 1, region="us-east-1"))


def test_ingest_event_from_other_bucket_ignored(env):
    outcome = env.service.handle(env.fastq(1, 1, bucket="someone-elses-bucket"))
    assert outcome.disposition is Disposition.IGNORED
    assert "someone-elses-bucket" in outcome.detail
    assert env.ddb.scan(TableName=TABLE)["Items"] == []


def test_ingest_reupload_with_new_content_starts_a_new_version_and_reports_it(env):
    # Given a sample whose analysis started
    for upload in [*complete_sample(env), env.marker()]:
        env.service.handle(upload)
    started_version = env.item(f"SAMPLE#{SAMPLE}")["manifest_version"]
    # When one FASTQ is uploaded again with different content, and its event is delivered twice
    changed = env.fastq(1, 1, etag="changed-content")
    outcome = env.service.handle(changed)
    again = env.service.handle(changed)
    # Then a new version started once, with its own manifest and execution; the first keeps its inputs
    assert outcome.disposition is Disposition.REUPLOADED
    assert again.disposition is Disposition.ALREADY_STARTED
    new_version = outcome.detail
    assert new_version != started_version
    assert len(env.executions()) == 2
    sample = env.item(f"SAMPLE#{SAMPLE}")
    assert sample["manifest_version"] == new_version
    assert sample["superseded_versions"] == [started_version]
    old_r1 = next(f for f in env.manifest(version=started_version)["files"] if (f["lane"], f["read"]) == (1, 1))
    new_r1 = next(f for f in env.manifest(version=new_version)["files"] if (f["lane"], f["read"]) == (1, 1))
    assert (old_r1["etag"], new_r1["etag"]) == ("etag-NA12878_S1_L001_R1_001.fastq.gz", "changed-content")
    # And exactly one SampleReuploaded event names both versions
    [reported] = env.events.of_type("SampleReuploaded")
    assert (reported["previous_version"], reported["version"]) == (started_version, new_version)


def test_ingest_reupload_with_same_content_starts_nothing(env):
    # Given a sample whose analysis started
    for upload in [*complete_sample(env), env.marker()]:
        env.service.handle(upload)
    # When a FASTQ is uploaded again with the same content (same size and ETag, a later sequencer)
    outcome = env.service.handle(env.fastq(1, 1))
    # Then nothing new starts and nothing is reported
    assert outcome.disposition is Disposition.ALREADY_STARTED
    assert len(env.executions()) == 1
    assert env.events.of_type("SampleReuploaded") == []


def test_ingest_stale_event_does_not_overwrite_newer_file(env):
    # Given the newer upload of L001 R1 recorded first
    env.service.handle(env.fastq(1, 1, etag="newer", sequencer="0055AED6DCD90281E6"))
    # When an older event for the same slot arrives late
    env.service.handle(env.fastq(1, 1, etag="older", sequencer="0055AED6DCD90281E5"))
    for upload in [env.fastq(1, 2), env.marker()]:
        env.service.handle(upload)
    # Then the slot and the manifest keep the newer file
    assert env.item(f"SAMPLE#{SAMPLE}")["fastq#L001#R1"]["etag"] == "newer"
    [r1] = [f for f in env.manifest()["files"] if (f["lane"], f["read"]) == (1, 1)]
    assert r1["etag"] == "newer"
