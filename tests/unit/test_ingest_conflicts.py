"""Files accounted for (issue 8): two keys for one slot, and uploads the sample sheet does not declare, hold the sample
in CONFLICT (both keys named, one SampleConflict event, nothing started) whatever the order; the lab resolves it by
deleting a key and sending the completion marker again. Real adapters on moto."""

from __future__ import annotations

import itertools
import json

import pytest
from jsonschema import Draft202012Validator
from moto import mock_aws

from seqlane.completion import account
from seqlane.ingest import MAX_KEY_BYTES, Disposition, UnusableUpload
from tests.conftest import ROOT
from tests.unit.test_ingest import INGEST, RUN, SAMPLE, Env

SCHEMA = json.loads((ROOT / "events" / "schemas" / "SampleConflict.json").read_text())
LANE_1_SHEET = b"[Header]\nFileFormatVersion,2\n[Reads]\nRead1Cycles,151\nRead2Cycles,151\n[BCLConvert_Data]\n"
LANE_1_SHEET += f"Lane,Sample_ID\n1,{SAMPLE}\n".encode()
SINGLE_END_SHEET = LANE_1_SHEET.replace(b"Read2Cycles,151\n", b"")


@pytest.fixture
def env(aws_credentials):
    with mock_aws():
        yield Env()


def fastq(sample=SAMPLE, number=1, lane=1, read=1, folder=""):
    lane_part = "" if lane is None else f"_L{lane:03d}"
    return f"{folder}{sample}_S{number}{lane_part}_R{read}_001.fastq.gz"


def starts(outcomes) -> list[str]:
    return [name for outcome in outcomes for name in outcome.started]


def conflict_events(env, run=RUN) -> list[dict]:
    return [detail for detail in env.events.of_type("SampleConflict") if detail["run_id"] == run]


def record(env, run=RUN, sample=SAMPLE):
    return env.service.catalog.sample(run, sample)


# ---- two keys for one slot

SLOT_CLASHES = {
    "lane-merged-next-to-lane-split": (fastq(lane=None), fastq(lane=1), "lane-merged FASTQ next to lane-split"),
    "two-project-folders": (fastq(folder="ProjA/"), fastq(folder="ProjB/"), "in 2 folders: ProjA/, ProjB/"),
    "two-sample-numbers": (fastq(number=1), fastq(number=2), "one Sample_ID under S1, S2"),
}


@pytest.mark.parametrize("clash", SLOT_CLASHES.values(), ids=SLOT_CLASHES.keys())
def test_ingest_two_keys_for_one_slot_hold_the_sample_in_conflict_in_any_order(env, clash):
    first, second, why = clash
    for number, order in enumerate(itertools.permutations([first, second, fastq(read=2), "CopyComplete.txt"])):
        # Given two keys for L001 R1, its R2 and the marker, uploaded (objects exist) and delivered in this order
        run = f"{RUN}{number}"
        uploads = [env.upload(path, run=run) for path in order]
        # When every event is handled, each twice
        outcomes = [env.service.handle(upload) for upload in uploads + uploads]
        # Then nothing started, the sample is CONFLICT, and one SampleConflict names both keys and why
        assert starts(outcomes) == [], order
        assert record(env, run).status == "CONFLICT", order
        [event] = conflict_events(env, run)
        assert event["slot"] == "L001 R1" and event["sample_id"] == SAMPLE
        assert event["keys"] == sorted(f"{run}/{path}" for path in (first, second))
        assert why in event["reason"]
        Draft202012Validator(SCHEMA).validate(event)


def test_ingest_reupload_of_the_same_key_is_a_new_version_not_a_conflict(env):
    # Given a started sample
    env.service.handle(env.marker())
    for upload in [env.fastq(1, 1), env.fastq(1, 2)]:
        env.service.handle(upload)
    # When the same key is uploaded again with new content
    outcome = env.service.handle(env.fastq(1, 1, etag="changed"))
    # Then it is a new version, reported, and no conflict
    assert outcome.disposition is Disposition.REUPLOADED
    assert conflict_events(env) == []


def test_ingest_second_key_after_the_start_is_reported_and_starts_nothing(env):
    # Given a sample the sheet declares on lane 1, started when its two files arrived
    env.service.handle(env.upload("SampleSheet.csv", body=LANE_1_SHEET))
    started = starts([env.service.handle(env.upload(fastq(read=r))) for r in (1, 2)])
    assert len(started) == 1
    # When a second key for L001 R1 arrives (another S-number)
    outcome = env.service.handle(env.upload(fastq(number=2)))
    # Then the running analysis keeps its inputs: nothing else starts, the extra key is reported as a conflict
    assert outcome.disposition is Disposition.CONFLICT and not outcome.started
    sample = record(env)
    assert sample.status == "MANIFESTED" and sample.started
    [event] = conflict_events(env)
    assert event["started"] is True and f"{RUN}/{fastq(number=2)}" in event["keys"]
    assert env.events.of_type("SampleReuploaded") == []
    assert len(env.executions()) == 1


def test_ingest_conflict_resolved_when_the_lab_deletes_a_key_and_sends_the_marker_again(env):
    # Given a sample held in conflict: lane-merged and lane-split R1 next to one R2
    uploads = [env.upload(path) for path in (fastq(lane=None), fastq(lane=1), fastq(read=2))]
    outcomes = [env.service.handle(upload) for upload in [*uploads, env.marker()]]
    assert starts(outcomes) == [] and record(env).status == "CONFLICT"
    # When the lab deletes the lane-merged file and uploads the completion marker again
    env.s3.delete_object(Bucket=INGEST, Key=f"{RUN}/{fastq(lane=None)}")
    outcome = env.service.handle(env.marker())
    # Then the conflict is gone and the sample starts once, with the file kept
    assert len(outcome.started) == 1
    sample = record(env)
    assert sample.slot_claims == {} and sample.status == "MANIFESTED"
    assert sample.files[(1, 1, 1)].key == f"{RUN}/{fastq(lane=1)}"
    assert len(conflict_events(env)) == 1


def test_ingest_conflict_resolved_keeping_the_file_that_lost_the_slot(env):
    # Given two S-numbers for L001 R1: the first delivered holds the slot
    uploads = [env.upload(path) for path in (fastq(number=1), fastq(number=2), fastq(read=2))]
    for upload in [*uploads, env.marker()]:
        env.service.handle(upload)
    # When the lab deletes the slot holder's key and sends the marker again
    env.s3.delete_object(Bucket=INGEST, Key=f"{RUN}/{fastq(number=1)}")
    outcome = env.service.handle(env.marker())
    # Then the other key takes the slot and the sample starts with it
    assert len(outcome.started) == 1
    assert record(env).files[(1, 1, 1)].key == f"{RUN}/{fastq(number=2)}"


def test_ingest_same_name_in_two_sample_id_folders_is_not_announced_before_sheet_or_marker(env):
    # Given two files named alike in two sub-folders (project folders, or v1 <Sample_ID>/ folders)
    outcomes = [env.service.handle(env.upload(fastq(folder=f"{folder}/"))) for folder in ("A1", "A2")]
    # Then the sample is held (nothing starts) but no conflict is announced: only the sheet can tell
    assert outcomes[-1].disposition is Disposition.WAITING and "held until" in outcomes[-1].detail
    assert conflict_events(env) == []
    # When the marker arrives without a sheet, then the folders are projects: one sample, in conflict
    env.service.handle(env.marker())
    assert len(conflict_events(env)) == 1


# ---- the sheet and the uploads disagree


def check_one_decision(env, run, outcomes, undeclared_slots):
    started = starts(outcomes)
    assert len(started) <= 1
    assert env.events.of_type("SampleReuploaded") == []
    assert sorted(event["slot"] for event in conflict_events(env, run)) == sorted(undeclared_slots)
    assert all("the sample sheet declares" in event["reason"] for event in conflict_events(env, run))
    sample = record(env, run)
    if started:  # started with the declared files only, the extra ones reported
        assert sample.status == "MANIFESTED" and len(started) == 1
    else:
        assert sample.status == "CONFLICT" and not sample.manifest_version


LANES_1_AND_2 = ["SampleSheet.csv", fastq(), fastq(read=2), fastq(lane=2), fastq(lane=2, read=2), "CopyComplete.txt"]
# R1 and R2 of a lane play the same part: of each order and its R1/R2 swaps one is run (180 of the 720), in chunks
# that each get a fresh moto.
ORDERS = [
    order
    for order in itertools.permutations(LANES_1_AND_2)
    if order.index(LANES_1_AND_2[1]) < order.index(LANES_1_AND_2[2])
    and order.index(LANES_1_AND_2[3]) < order.index(LANES_1_AND_2[4])
]


@pytest.mark.parametrize("chunk", range(6))
def test_ingest_lane_the_sheet_does_not_declare_is_one_decision_in_every_order(env, chunk):
    # Given a sheet declaring the sample on lane 1 only, and FASTQs of lanes 1 and 2
    for number, order in enumerate(ORDERS[chunk::6]):
        run = f"{RUN}{number}"
        uploads = [env.upload(path, run=run, body=LANE_1_SHEET if path == "SampleSheet.csv" else b"") for path in order]
        # When delivered in this order
        outcomes = [env.service.handle(upload) for upload in uploads]
        # Then at most one start, never a new version, and each undeclared file reported once, naming the sheet
        check_one_decision(env, run, outcomes, ["L002 R1", "L002 R2"])


def test_ingest_r2_of_a_single_end_sheet_is_one_decision_in_every_order(env):
    paths = ["SampleSheet.csv", fastq(), fastq(read=2), "CopyComplete.txt"]
    for number, order in enumerate(itertools.permutations(paths)):
        run = f"{RUN}{number}"
        body = {"SampleSheet.csv": SINGLE_END_SHEET}
        outcomes = [env.service.handle(env.upload(path, run=run, body=body.get(path, b""))) for path in order]
        check_one_decision(env, run, outcomes, ["L001 R2"])


def test_ingest_corrected_sheet_releases_the_conflict(env):
    # Given a sample held because the sheet declares lane 1 only but lane 2 came
    for path in (fastq(lane=2), fastq(lane=2, read=2)):
        env.service.handle(env.upload(path))
    env.service.handle(env.upload("SampleSheet.csv", body=LANE_1_SHEET))
    assert record(env).status == "CONFLICT"
    # When the lab uploads a sheet declaring lanes 1 and 2, then lane 1
    env.service.handle(env.upload("SampleSheet.csv", body=LANE_1_SHEET + f"2,{SAMPLE}\n".encode()))
    outcomes = [env.service.handle(env.upload(fastq(read=r))) for r in (1, 2)]
    # Then the sample starts once with its four files
    assert len(starts(outcomes)) == 1
    assert len(env.manifest()["files"]) == 4


# ---- keys the catalog cannot hold, and the accounting


def test_ingest_key_too_long_for_the_catalog_is_unusable_before_any_write(env):
    # Given a key of more than MAX_KEY_BYTES bytes of UTF-8 (here 2-byte characters)
    path = "\u00e9" * 520 + ".fastq.gz"
    upload = env.upload(path)
    # When handled / Then UnusableUpload names the key and the limit, and nothing is in the catalog
    with pytest.raises(UnusableUpload, match=f"at most {MAX_KEY_BYTES} bytes"):
        env.service.handle(upload)
    assert env.ddb.scan(TableName="catalog")["Items"] == []


def test_account_every_uploaded_key_is_in_a_manifest_ignored_or_in_conflict(env):
    # Given a started sample, a held one (two S-numbers), a stray file, a sheet-less marker
    paths = [fastq(read=r) for r in (1, 2)]
    paths += [fastq("HG002", 2, read=r) for r in (1, 2)] + [fastq("HG002", 3)] + ["Reports/x.html"]
    uploads = [env.upload(path) for path in paths]
    for upload in [*uploads, env.marker()]:
        env.service.handle(upload)
    catalog = env.service.catalog
    # When accounted
    ignored = [key for key, _ in catalog.ignored_files(RUN)]
    result = account([u.key for u in uploads] + [f"{RUN}/CopyComplete.txt"], catalog.samples_of_run(RUN), ignored)
    # Then uploaded = in manifests + ignored + in conflict
    assert result == {
        "uploaded": 6,
        "in_manifests": 2,
        "ignored": 1,
        "in_conflict": 3,
        "balanced": True,
        "unaccounted": [],
    }


def test_ingest_sheet_conflict_resolved_when_the_lab_deletes_the_undeclared_files(env):
    # Given a sample held: the sheet declares lane 1, lane 2 came too
    uploads = [env.upload(path) for path in (fastq(), fastq(read=2), fastq(lane=2), fastq(lane=2, read=2))]
    for upload in [env.upload("SampleSheet.csv", body=LANE_1_SHEET), *uploads[2:], *uploads[:2]]:
        env.service.handle(upload)
    assert record(env).status == "CONFLICT"
    # When the lab deletes the lane 2 files and uploads the completion marker
    for upload in uploads[2:]:
        env.s3.delete_object(Bucket=INGEST, Key=upload.key)
    outcome = env.service.handle(env.marker())
    # Then the sample starts once with its lane 1 files
    assert len(outcome.started) == 1
    assert sorted(f["key"] for f in env.manifest()["files"]) == sorted(u.key for u in uploads[:2])


def test_ingest_lane_merged_file_the_sheet_does_not_declare_is_named_so(env):
    # Given a sheet declaring lanes 3 and 4, and lane-merged files
    sheet = LANE_1_SHEET.replace(f"1,{SAMPLE}\n".encode(), f"3,{SAMPLE}\n4,{SAMPLE}\n".encode())
    env.service.handle(env.upload("SampleSheet.csv", body=sheet))
    outcome = env.service.handle(env.upload(fastq(lane=None)))
    # Then the conflict says the file is lane-merged
    assert outcome.disposition is Disposition.CONFLICT
    [event] = conflict_events(env)
    assert (
        "declares NA12878 on lanes 3, 4 only" in event["reason"] and "lane-merged (read as lane 1)" in event["reason"]
    )
