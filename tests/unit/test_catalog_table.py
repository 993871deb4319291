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


def test_finish_analysis_ignores_superseded_version_and_enters_a_final_state_once(catalog):
    # Given a sample whose manifest is version v2
    catalog.record_fastq(RUN, SAMPLE, fastq(1, 1), "0001")
    catalog.claim_manifest(RUN, SAMPLE, "v2", "s3://b/v2/manifest.json", "x-v2")

    # When an outcome for version v1 arrives, Then it is refused and the sample keeps its status
    assert catalog.finish_analysis(RUN, SAMPLE, "v1", 1, status=SampleStatus.FAILED, details={"job_id": "j1"}) is False
    assert catalog.samples_of_run(RUN)[0].status is SampleStatus.MANIFESTED
    # And an outcome for v2 is recorded, again only until its event is published, never another state after it
    assert catalog.finish_analysis(RUN, SAMPLE, "v2", 1, status=SampleStatus.SUCCEEDED, details={"job_id": "j2"})
    assert catalog.finish_analysis(RUN, SAMPLE, "v2", 1, status=SampleStatus.SUCCEEDED, details={"job_id": "j2"})
    assert not catalog.finish_analysis(RUN, SAMPLE, "v2", 1, status=SampleStatus.FAILED, details={})
    catalog.mark_outcome_published(RUN, SAMPLE, "v2", 1)
    assert not catalog.finish_analysis(RUN, SAMPLE, "v2", 1, status=SampleStatus.SUCCEEDED, details={})
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


# ---- conflicts, folder owners (issue 8)


def other(lane: int, read: int, number: int = 2) -> FastqFile:
    """A second key for the same slot: the sample under another S-number."""
    return FastqFile(f"{RUN}/{SAMPLE}_S{number}_L{lane:03d}_R{read}_001.fastq.gz", lane, read, 7, "e9")


def test_record_fastq_second_key_for_a_slot_is_a_claim_in_either_order(catalog):
    for run, order in ((f"{RUN}a", (fastq(1, 1), other(1, 1))), (f"{RUN}b", (other(1, 1), fastq(1, 1)))):
        # Given one key in L001 R1, When another key for L001 R1 arrives
        catalog.record_fastq(run, SAMPLE, order[0], "0001")
        sample = catalog.record_fastq(run, SAMPLE, order[1], "0002")
        # Then the slot keeps the first, and both keys are claims on it
        assert sample.files == {(1, 1, 1): order[0]}
        assert sample.slot_claims == {(1, 1, 1): {f.key: f for f in order}}
        # And a redelivery of either changes nothing
        assert catalog.record_fastq(run, SAMPLE, order[1], "0002") == sample
        assert catalog.record_fastq(run, SAMPLE, order[0], "0001") == sample


def test_record_fastq_is_redirected_when_a_sheet_says_the_folder_owns_the_name(catalog):
    # Given a v1 sheet said: files named "tissue" in folder A1/ belong to sample A1
    catalog.add_folder_owners(RUN, "tissue", {"A1"})
    file = FastqFile(f"{RUN}/A1/tissue_S1_L001_R1_001.fastq.gz", 1, 1, 10, "e")
    # When the file is recorded under its name with its folder
    record = catalog.record_fastq(RUN, "tissue", file, "0001", folder="A1")
    # Then nothing is written there, and the record says where it belongs
    assert record.files == {} and "A1" in record.folder_owners
    # And a file of another folder is recorded under the name
    elsewhere = FastqFile(f"{RUN}/Proj/tissue_S2_L001_R1_001.fastq.gz", 1, 1, 10, "e")
    assert catalog.record_fastq(RUN, "tissue", elsewhere, "0002", folder="Proj").files == {(1, 1, 1): elsewhere}


def test_move_files_re_attributes_a_recorded_file_to_its_sample(catalog):
    # Given a file recorded under a Sample_Name before the sheet arrived
    file = FastqFile(f"{RUN}/A1/tissue_S1_L001_R1_001.fastq.gz", 1, 1, 10, "e")
    catalog.record_fastq(RUN, "tissue", file, "0001", folder="A1")
    catalog.record_listing(RUN, "tissue", {(1, 1, 1): frozenset({file.key})})
    # When it is moved to sample A1
    catalog.move_files(RUN, "tissue", "A1", {file.key})
    # Then A1 holds it, and the name's record holds nothing (not even the listing's expectations)
    assert catalog.sample(RUN, "A1").files == {(1, 1, 1): file}
    left = catalog.sample(RUN, "tissue")
    assert (left.files, left.expected) == ({}, frozenset())


@pytest.mark.parametrize("dropped", ["holder", "claimant"])
def test_drop_keys_leaves_the_one_key_left_in_the_slot(catalog, dropped):
    # Given two keys claiming L001 R1, the conflict reported
    catalog.record_fastq(RUN, SAMPLE, fastq(1, 1), "0001")
    catalog.record_fastq(RUN, SAMPLE, other(1, 1), "0002")
    assert catalog.report_conflict(RUN, SAMPLE, "slot:L001 R1")
    gone, kept = (fastq(1, 1), other(1, 1)) if dropped == "holder" else (other(1, 1), fastq(1, 1))
    # When one key is dropped (deleted from the run folder)
    sample = catalog.drop_keys(RUN, SAMPLE, {gone.key})
    # Then the other holds the slot, no claims are left, and the conflict may be reported again if it comes back
    assert sample.files == {(1, 1, 1): kept} and sample.slot_claims == {}
    assert sample.conflicts_reported == frozenset()


def test_report_conflict_is_true_once_per_conflict(catalog):
    assert catalog.report_conflict(RUN, SAMPLE, "slot:L001 R1") is True
    assert catalog.report_conflict(RUN, SAMPLE, "slot:L001 R1") is False
    assert catalog.report_conflict(RUN, SAMPLE, "sheet:L002 R1") is True


def test_hold_in_conflict_refuses_claims_until_released_and_never_holds_a_manifested_sample(catalog):
    # Given a sample held in CONFLICT
    assert catalog.hold_in_conflict(RUN, SAMPLE) is True
    # When a manifest is claimed for it (an invocation that read it before) / Then the claim is refused
    assert catalog.claim_manifest(RUN, SAMPLE, "v1", "s3://r/m.json", "x").outcome is ClaimOutcome.CONFLICT
    # And once released it can be claimed, after which it is never held
    catalog.release_conflict(RUN, SAMPLE)
    assert catalog.claim_manifest(RUN, SAMPLE, "v1", "s3://r/m.json", "x").outcome is ClaimOutcome.CLAIMED
    assert catalog.hold_in_conflict(RUN, SAMPLE) is False
    assert catalog.sample(RUN, SAMPLE).status is SampleStatus.MANIFESTED


def test_record_listing_keeps_the_claims_events_wrote(catalog):
    # Given one key's event recorded as a claim already (its slot taken by another key)
    catalog.record_fastq(RUN, SAMPLE, fastq(1, 1), "0001")
    catalog.record_fastq(RUN, SAMPLE, other(1, 1), "0002")
    # When the listing names both keys and a third one for that slot
    third = other(1, 1, number=3)
    catalog.record_listing(RUN, SAMPLE, {(1, 1, 1): frozenset({fastq(1, 1).key, other(1, 1).key, third.key})})
    # Then three keys claim it, and the claims from events keep their size and ETag
    claims = catalog.sample(RUN, SAMPLE).slot_claims[(1, 1, 1)]
    assert sorted(claims) == sorted([fastq(1, 1).key, other(1, 1).key, third.key])
    assert claims[other(1, 1).key] == other(1, 1)


def test_samples_of_run_records_of_a_sample_name_are_not_samples(catalog):
    from seqlane.completion import is_sample

    # Given the record a v1 sheet leaves under a Sample_Name, and a declared sample
    catalog.add_folder_owners(RUN, "tissue", {"A1"})
    catalog.declare_sample(RUN, "A1", frozenset({1}), True, None)
    # Then only the declared one is a sample
    assert [r.sample_id for r in catalog.samples_of_run(RUN) if is_sample(r)] == ["A1"]


def test_drop_keys_never_puts_a_listed_claim_without_its_event_in_the_slot(catalog):
    # Given L001 R1 held by one key, and a second key known only from the marker's listing
    catalog.record_fastq(RUN, SAMPLE, fastq(1, 1), "0001")
    catalog.record_listing(RUN, SAMPLE, {(1, 1, 1): frozenset({fastq(1, 1).key, other(1, 1).key})})
    # When the holder is deleted (dropped)
    sample = catalog.drop_keys(RUN, SAMPLE, {fastq(1, 1).key})
    # Then the slot waits for the other key's own event (size and ETag), which then takes it
    assert sample.files == {} and sample.slot_claims == {}
    assert catalog.record_fastq(RUN, SAMPLE, other(1, 1), "0002").files == {(1, 1, 1): other(1, 1)}
