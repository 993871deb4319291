"""DynamoCatalog on a moto table shaped like template.yaml's CatalogTable (pk HASH, sk RANGE)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from seqlane.adapters.catalog_table import DynamoCatalog
from seqlane.manifest import FastqFile
from seqlane.ports import ClaimOutcome, JobOutput, SampleStatus
from tests.conftest import REGION
from tests.unit.test_catalog import TABLE, create_catalog_table

RUN, SAMPLE = "241121_A01234_0042_BHXXXXXXXX", "NA12878"


def fastq(lane: int, read: int, etag: str = "e1") -> FastqFile:
    return FastqFile(f"{RUN}/{SAMPLE}_S1_L{lane:03d}_R{read}_001.fastq.gz", lane, read, 100 * lane + read, etag)


@pytest.fixture
def catalog(aws_credentials):
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        yield DynamoCatalog(create_catalog_table(dynamodb), dynamodb)


def put(catalog: DynamoCatalog, sk: str) -> None:
    catalog.client.put_item(TableName=TABLE, Item={"pk": {"S": f"RUN#{RUN}"}, "sk": {"S": sk}})


def test_record_fastq_returns_sample_with_every_slot_so_far(catalog):
    # Given lane 1 read 1 already recorded
    catalog.record_fastq(RUN, SAMPLE, fastq(1, 1), "0001")

    # When lane 1 read 2 arrives
    sample = catalog.record_fastq(RUN, SAMPLE, fastq(1, 2), "0002")

    # Then the returned sample holds both reads and is still RECEIVING
    assert sample.files == {(1, 1): fastq(1, 1), (1, 2): fastq(1, 2)}
    assert sample.status is SampleStatus.RECEIVING and sample.has_all_reads


def test_record_fastq_stale_ordering_keeps_newer_slot(catalog):
    # Given a slot written by a newer upload (later S3 sequencer)
    catalog.record_fastq(RUN, SAMPLE, fastq(1, 1, etag="new"), "0009")

    # When the older upload's event arrives late
    sample = catalog.record_fastq(RUN, SAMPLE, fastq(1, 1, etag="old"), "0003")

    # Then the newer file stays, and the current sample is returned
    assert sample.files == {(1, 1): fastq(1, 1, etag="new")}
    assert catalog.samples_of_run(RUN)[0].files == {(1, 1): fastq(1, 1, etag="new")}


def test_claim_manifest_claims_once_per_version(catalog):
    # Given a sample with its reads
    catalog.record_fastq(RUN, SAMPLE, fastq(1, 1), "0001")

    # When version v1 is claimed, claimed again (crash and retry), then v2 is claimed
    outcomes = [
        catalog.claim_manifest(RUN, SAMPLE, v, f"s3://b/{v}/manifest.json", f"x-{v}") for v in ("v1", "v1", "v2")
    ]

    # Then v1 is the sample's manifest and v2 is told another version was claimed
    assert outcomes == [ClaimOutcome.CLAIMED, ClaimOutcome.CLAIMED, ClaimOutcome.OTHER_VERSION]
    (sample,) = catalog.samples_of_run(RUN)
    assert (sample.manifest_version, sample.status) == ("v1", SampleStatus.MANIFESTED)


def test_mark_run_complete_makes_run_complete_and_keeps_first_marker(catalog):
    # Given a run not yet complete
    assert catalog.run_is_complete(RUN) is False

    # When its completion marker is recorded twice
    catalog.mark_run_complete(RUN, f"{RUN}/CopyComplete.txt")
    catalog.mark_run_complete(RUN, f"{RUN}/RTAComplete.txt")

    # Then the run is complete, with the first marker, and another run is not
    assert catalog.run_is_complete(RUN) is True
    item = catalog.client.get_item(TableName=TABLE, Key={"pk": {"S": f"RUN#{RUN}"}, "sk": {"S": "RUN"}})["Item"]
    assert item["marker_key"] == {"S": f"{RUN}/CopyComplete.txt"}
    assert catalog.run_is_complete("other_run") is False


def test_samples_of_run_lists_only_sample_items(catalog):
    # Given two samples, the run item, an ignored file and an output in the run's partition, and another run
    catalog.record_fastq(RUN, "S1", fastq(1, 1), "0001")
    catalog.record_fastq(RUN, "S2", fastq(1, 1), "0001")
    catalog.record_fastq("other_run", "S3", fastq(1, 1), "0001")
    catalog.mark_run_complete(RUN, f"{RUN}/CopyComplete.txt")
    catalog.record_ignored(RUN, f"{RUN}/SampleSheet.csv", "not a FASTQ")
    put(catalog, "OUTPUT#S1#v1#S1.bam")

    # When the run's samples are listed, Then only its two SAMPLE# items come back
    assert sorted(s.sample_id for s in catalog.samples_of_run(RUN)) == ["S1", "S2"]


def test_record_outputs_writes_more_than_one_batch(catalog):
    # Given 60 outputs (BatchWriteItem takes 25 at most), and a count of BatchWriteItem calls
    outputs = [JobOutput(f"part{i:02d}.bam", f"s3://b/results/part{i:02d}.bam", i, f"{i:064x}") for i in range(60)]
    calls = []
    catalog.client.meta.events.register("before-call.dynamodb.BatchWriteItem", lambda **_: calls.append(1))

    # When they are recorded
    catalog.record_outputs(RUN, SAMPLE, "v1", outputs)

    # Then all 60 rows are in the table, written in three batches
    table = boto3.resource("dynamodb", region_name=REGION).Table(TABLE)
    rows = table.query(
        KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
        ExpressionAttributeValues={":pk": f"RUN#{RUN}", ":sk": f"OUTPUT#{SAMPLE}#v1#"},
    )["Items"]
    assert sorted(r["path"] for r in rows) == [o.path for o in outputs]
    assert len(calls) == 3


def test_record_job_outcome_ignores_superseded_version(catalog):
    # Given a sample whose manifest is version v2
    catalog.record_fastq(RUN, SAMPLE, fastq(1, 1), "0001")
    catalog.claim_manifest(RUN, SAMPLE, "v2", "s3://b/v2/manifest.json", "x-v2")

    # When an outcome for version v1 arrives
    current = catalog.record_job_outcome(RUN, SAMPLE, "v1", SampleStatus.FAILED, {"job_id": "j1"})

    # Then it is refused and the sample keeps its status
    assert current is False
    assert catalog.samples_of_run(RUN)[0].status is SampleStatus.MANIFESTED
    # And an outcome for v2 is recorded
    assert catalog.record_job_outcome(RUN, SAMPLE, "v2", SampleStatus.SUCCEEDED, {"job_id": "j2"}) is True
    assert catalog.samples_of_run(RUN)[0].status is SampleStatus.SUCCEEDED
