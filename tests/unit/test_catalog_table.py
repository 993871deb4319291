"""DynamoCatalog on a moto table shaped like template.yaml's CatalogTable (pk HASH, sk RANGE)."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from seqlane.adapters.catalog_table import DynamoCatalog
from seqlane.completion import missing_reads
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
    assert sample.files == {(1, 1, 1): fastq(1, 1), (1, 2, 1): fastq(1, 2)}
    assert sample.status is SampleStatus.RECEIVING and missing_reads(sample) == []


def test_record_fastq_stale_ordering_keeps_newer_slot(catalog):
    # Given a slot written by a newer upload (later S3 sequencer)
    catalog.record_fastq(RUN, SAMPLE, fastq(1, 1, etag="new"), "0009")

    # When the older upload's event arrives late
    sample = catalog.record_fastq(RUN, SAMPLE, fastq(1, 1, etag="old"), "0003")

    # Then the newer file stays, and the current sample is returned
    assert sample.files == {(1, 1, 1): fastq(1, 1, etag="new")}
    assert catalog.samples_of_run(RUN)[0].files == {(1, 1, 1): fastq(1, 1, etag="new")}


def test_claim_manifest_claims_once_per_version(catalog):
    # Given a sample with its reads
    catalog.record_fastq(RUN, SAMPLE, fastq(1, 1), "0001")

    # When version v1 is claimed, claimed again (crash and retry), then v2 is claimed
    outcomes = [
        catalog.claim_manifest(RUN, SAMPLE, v, f"s3://b/{v}/manifest.json", f"x-{v}") for v in ("v1", "v1", "v2")
    ]

    # Then v1 is the sample's manifest and v2 is told another version was claimed
    assert [claim.outcome for claim in outcomes] == [
        ClaimOutcome.CLAIMED,
        ClaimOutcome.CLAIMED,
        ClaimOutcome.OTHER_VERSION,
    ]
    assert [claim.claimed_version for claim in outcomes] == ["v1", "v1", "v1"]
    (sample,) = catalog.samples_of_run(RUN)
    assert (sample.manifest_version, sample.status) == ("v1", SampleStatus.MANIFESTED)


def test_mark_run_complete_makes_run_complete_and_keeps_first_marker(catalog):
    # Given a run not yet complete
    assert catalog.run_state(RUN).closed is False

    # When its completion marker is recorded twice
    catalog.mark_run_complete(RUN, f"{RUN}/CopyComplete.txt")
    catalog.mark_run_complete(RUN, f"{RUN}/RTAComplete.txt")

    # Then the run is complete, with the first marker, and another run is not
    assert catalog.run_state(RUN).closed is True
    item = catalog.client.get_item(TableName=TABLE, Key={"pk": {"S": f"RUN#{RUN}"}, "sk": {"S": "RUN"}})["Item"]
    assert item["marker_key"] == {"S": f"{RUN}/CopyComplete.txt"}
    assert catalog.run_state("other_run").closed is False


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


def test_record_sample_sheet_valid_sheet_clears_earlier_error(catalog):
    # Given a rejected sheet
    catalog.record_sample_sheet(RUN, f"{RUN}/SampleSheet.csv", "SampleSheet.csv line 3 [Data]: bad lane")
    assert catalog.run_state(RUN).sheet_error == "SampleSheet.csv line 3 [Data]: bad lane"
    # When a corrected sheet is read
    catalog.record_sample_sheet(RUN, f"{RUN}/SampleSheet.csv", None)
    # Then the run has the sheet and no error
    state = catalog.run_state(RUN)
    assert (state.sheet_key, state.sheet_error) == (f"{RUN}/SampleSheet.csv", None)


def test_declare_sample_and_split_segments_round_trip(catalog):
    # Given a sample the sheet declares on lanes 1 and 2, single-end, and a split segment of lane 1
    catalog.declare_sample(RUN, SAMPLE, frozenset({1, 2}), False, "somatic-wgs")
    second = FastqFile(key=f"{RUN}/x_002", lane=1, read=1, size=1, etag="e", segment=2)
    sample = catalog.record_fastq(RUN, SAMPLE, second, "0001")
    # Then the record carries the declaration and the segment's own slot
    assert (sample.declared_lanes, sample.paired, sample.modality) == (frozenset({1, 2}), False, "somatic-wgs")
    assert sample.files == {(1, 1, 2): second}
    assert missing_reads(sample) == ["L001 R1", "L002 R1"]


def test_supersede_manifest_replaces_only_the_version_it_names(catalog):
    # Given a sample whose version v1 is claimed
    catalog.record_fastq(RUN, SAMPLE, fastq(1, 1), "0001")
    catalog.claim_manifest(RUN, SAMPLE, "v1", "s3://r/m1", "e1")
    # When v2 supersedes v1, and a late attempt tries to supersede v1 with v3
    first = catalog.supersede_manifest(
        RUN, SAMPLE, previous="v1", version="v2", manifest_uri="s3://r/m2", execution_name="e2"
    )
    late = catalog.supersede_manifest(
        RUN, SAMPLE, previous="v1", version="v3", manifest_uri="s3://r/m3", execution_name="e3"
    )
    # Then v2 holds the sample, v1 is remembered, and the retry of v2's claim knows what it replaced
    assert (first, late) == (True, False)
    claim = catalog.claim_manifest(RUN, SAMPLE, "v2", "s3://r/m2", "e2")
    assert (claim.outcome, claim.superseded_from) == (ClaimOutcome.CLAIMED, "v1")


def test_record_ignored_is_true_only_the_first_time(catalog):
    assert catalog.record_ignored(RUN, f"{RUN}/x.html", "report") is True
    assert catalog.record_ignored(RUN, f"{RUN}/x.html", "report") is False
