"""Ingest on real sequencer output (issue 4): sample sheets, run completion, naming variants, concurrency, crashes
and chaos, with the real adapters on moto. The invariant everywhere: one manifest and one execution per sample
version, nothing lost, nothing doubled."""

from __future__ import annotations

import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from jsonschema import Draft202012Validator
from moto import mock_aws

from seqlane.completion import account, missing_reads
from seqlane.ingest import Disposition
from tests.conftest import ROOT
from tests.unit.test_ingest import RUN, SAMPLE, Env

SHEET_V2 = """[Header]
FileFormatVersion,2
RunName,{run}

[Reads]
Read1Cycles,151
{read2}Index1Cycles,10

[BCLConvert_Settings]
SoftwareVersion,4.2.7

[BCLConvert_Data]
Lane,Sample_ID,Index
1,NA12878,ATTACTCGAT
2,NA12878,ATTACTCGAT
1,HG002,TCCGGAGAGA
2,HG002,TCCGGAGAGA
1,HG003,CGCTCATTGT

[Seqlane_Settings]
Modality,germline-wgs

[Seqlane_Data]
Sample_ID,Modality
HG002,somatic-wgs
"""


def sheet(paired=True, run=RUN) -> bytes:
    return SHEET_V2.format(run=run, read2="Read2Cycles,151\n" if paired else "").encode()


def name(sample, number, lane, read):
    return f"{sample}_S{number}_L{lane:03d}_R{read}_001.fastq.gz"


@pytest.fixture
def env(aws_credentials):
    with mock_aws():
        yield Env()


def handle_all(env, uploads):
    return [env.service.handle(upload) for upload in uploads]


def sample_item(env, sample):
    return env.item(f"SAMPLE#{sample}")


def started_samples(env) -> list[str]:
    return sorted(name.split("-")[-2] for name in env.executions())


def test_ingest_sample_sheet_declared_lanes_start_a_sample_without_a_marker(env):
    # Given the run's sample sheet (NA12878 on lanes 1 and 2)
    handle_all(env, [env.upload("SampleSheet.csv", body=sheet())])
    # When NA12878's lane 1 arrives, then lane 2
    after_lane1 = handle_all(env, [env.upload(name("NA12878", 1, 1, r)) for r in (1, 2)])
    after_lane2 = handle_all(env, [env.upload(name("NA12878", 1, 2, r)) for r in (1, 2)])
    # Then it waits for lane 2, and starts once every declared lane has R1 and R2, with no completion marker
    assert after_lane1[-1].detail == "waiting for L002 R1, L002 R2"
    assert after_lane2[-1].disposition is Disposition.STARTED
    assert started_samples(env) == ["NA12878"]


def test_ingest_sample_sheet_arriving_last_starts_complete_samples_and_reports_missing(env):
    # Given NA12878 and HG002 complete on both lanes, HG003 never uploaded
    uploads = [
        env.upload(name(s, n, lane, r)) for s, n in (("NA12878", 1), ("HG002", 2)) for lane in (1, 2) for r in (1, 2)
    ]
    outcomes = handle_all(env, uploads)
    assert {o.disposition for o in outcomes} == {Disposition.WAITING}
    # When the sample sheet arrives last
    outcome = env.service.handle(env.upload("SampleSheet.csv", body=sheet()))
    # Then the two complete samples start, and HG003 is reported as a declared sample with nothing arrived
    assert outcome.disposition is Disposition.SHEET_READ
    assert len(outcome.started) == 2
    assert started_samples(env) == ["HG002", "NA12878"]
    [hg003_record] = [r for r in env.service.catalog.samples_of_run(RUN) if r.sample_id == "HG003"]
    assert missing_reads(hg003_record) == ["L001 R1", "L001 R2"]
    hg003 = sample_item(env, "HG003")
    assert "status" not in hg003 and hg003["declared_lanes"] == [1]  # no status yet: RECEIVING
    # And HG002 runs with the modality its sheet row names; NA12878 with the sheet's default
    assert env.manifest(version=None)["route"]["modality"] == "germline-wgs"
    hg002 = sample_item(env, "HG002")
    assert f"/{hg002['manifest_version']}/" in hg002["manifest_uri"]
    manifest = env.s3.get_object(Bucket="results-bucket", Key=hg002["manifest_uri"].split("/", 3)[3])["Body"].read()
    assert b'"modality": "somatic-wgs"' in manifest


def test_ingest_single_end_sheet_needs_only_r1(env):
    # Given a single-end sheet (no Read2Cycles) and HG003's one lane of R1
    handle_all(env, [env.upload("SampleSheet.csv", body=sheet(paired=False))])
    [outcome] = handle_all(env, [env.upload(name("HG003", 3, 1, 1))])
    # Then it starts, and its fastq-list row has no Read2File
    assert outcome.disposition is Disposition.STARTED
    key = sample_item(env, "HG003")["manifest_uri"].split("/", 3)[3]
    fastq_list = env.s3.get_object(Bucket="results-bucket", Key=key.replace("manifest.json", "fastq_list.csv"))
    assert (
        fastq_list["Body"]
        .read()
        .decode()
        .splitlines()[1]
        .endswith(",1,s3://ingest-bucket/" + f"{RUN}/{name('HG003', 3, 1, 1)},")
    )


def test_ingest_malformed_sheet_is_reported_on_the_run_and_does_not_block_other_runs(env):
    # Given a sheet whose data row has a lane that does not exist
    bad = sheet().replace(b"1,HG003,CGCTCATTGT", b"9,HG003,CGCTCATTGT")
    outcome = env.service.handle(env.upload("SampleSheet.csv", body=bad))
    # Then it is rejected with the line and section, on the run record and as an event
    assert outcome.disposition is Disposition.SHEET_REJECTED
    run_record = env.item("RUN")
    assert "line 19" in run_record["sheet_error"] and "BCLConvert_Data" in run_record["sheet_error"]
    [event] = env.events.of_type("SampleSheetRejected")
    assert (event["line"], event["section"]) == (19, "BCLConvert_Data")
    # And the run can still close with its marker, and another run is unaffected
    handle_all(env, [env.upload(name(SAMPLE, 1, 1, r)) for r in (1, 2)] + [env.marker()])
    other = "241122_A01234_0043_BHYYYYYYYY"
    handle_all(env, [env.upload(name(SAMPLE, 1, 1, r), run=other) for r in (1, 2)] + [env.marker(run=other)])
    assert len(env.executions()) == 1 and len(env.executions(run=other)) == 1


def test_ingest_lane_merged_split_and_project_folder_names_make_one_manifest(env):
    # Given lane-merged FASTQs in a Sample_Project folder, split in two segments, as .fastq.ora
    files = [f"Project_A/{SAMPLE}_S1_R{r}_00{seg}.fastq.ora" for seg in (1, 2) for r in (1, 2)]
    handle_all(env, [env.upload(f) for f in files] + [env.marker()])
    # Then one execution, and the fastq-list has one row per segment on lane 1
    assert len(env.executions()) == 1
    rows = env.manifest()["fastq_list"]
    assert [(row["Lane"], row["RGID"]) for row in rows] == [("1", f"{RUN}.{SAMPLE}.1"), ("1", f"{RUN}.{SAMPLE}.1.2")]
    assert all(row["Read1File"].endswith(".fastq.ora") and row["Read2File"] for row in rows)


def test_ingest_multipart_upload_etag_is_a_file_like_any_other(env):
    # Given FASTQs completed by CompleteMultipartUpload (ETag "<md5>-<parts>")
    uploads = [env.fastq(1, r, etag=f"9b2cf535f27731c974343645a3985328-{12 + r}") for r in (1, 2)]
    handle_all(env, [*uploads, env.marker()])
    # Then the sample starts with those ETags in its manifest
    assert len(env.executions()) == 1
    assert {f["etag"] for f in env.manifest()["files"]} == {u.etag for u in uploads}


def test_ingest_concurrent_last_two_files_start_one_execution(env):
    # Given a closed run whose sample waits for its last two files
    handle_all(env, [env.marker(), env.fastq(1, 1), env.fastq(2, 1)])
    last = [env.fastq(1, 2), env.fastq(2, 2)]
    barrier = threading.Barrier(2)
    outcomes = []

    def handle(upload):
        barrier.wait()
        outcomes.append(env.service.handle(upload))

    # When two invocations handle them at the same moment
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(handle, upload) for upload in last]
    for future in futures:
        future.result()  # an invocation that raised fails the test here
    # Then both were handled, exactly one execution started, and exactly one invocation reports it
    assert len(outcomes) == 2
    assert len(env.executions()) == 1
    assert [o.disposition for o in outcomes].count(Disposition.STARTED) == 1


class FlakyOrchestrator:
    """Crashes (as a Lambda timing out would) on chosen calls, then behaves."""

    def __init__(self, real, crash_on: set[int]) -> None:
        self.real, self.crash_on, self.calls = real, crash_on, 0

    def start_analysis(self, execution_name, execution_input):
        self.calls += 1
        if self.calls in self.crash_on:
            raise TimeoutError("invocation died before starting the execution")
        return self.real.start_analysis(execution_name, execution_input)


def test_ingest_crash_between_claim_and_start_then_redelivery_starts_once(env):
    # Given an invocation that dies after claiming the manifest, before starting the execution
    env.service.orchestrator = FlakyOrchestrator(env.service.orchestrator, crash_on={1})
    uploads = [env.fastq(1, 1), env.fastq(1, 2), env.marker()]
    handle_all(env, uploads[:2])
    with pytest.raises(TimeoutError):
        env.service.handle(uploads[2])
    # When SQS redelivers that event
    outcome = env.service.handle(uploads[2])
    # Then the sample starts once
    assert outcome.started and len(env.executions()) == 1


@pytest.mark.parametrize("seed", [7, 11, 2026])
def test_ingest_chaos_random_order_duplicates_and_crashes_start_each_sample_once(env, seed):
    # Given a run of 12 samples x 2 lanes x 2 reads, a sheet, a marker and stray files, delivered in a random
    # order with 30% of events duplicated, and invocations crashing at random before starting (then redelivered)
    rng = random.Random(seed)
    samples = [f"S{n:02d}" for n in range(1, 13)]
    uploads = [env.upload(name(s, n, lane, r)) for n, s in enumerate(samples, 1) for lane in (1, 2) for r in (1, 2)]
    sheet_rows = "".join(f"{lane},{s},ACGT\n" for s in samples for lane in (1, 2))
    text = f"[Header]\nFileFormatVersion,2\n\n[BCLConvert_Data]\nLane,Sample_ID,Index\n{sheet_rows}"
    uploads += [env.upload("SampleSheet.csv", body=text.encode()), env.marker(), env.upload("Reports/x.html")]
    deliveries = uploads + [u for u in uploads if rng.random() < 0.3]
    rng.shuffle(deliveries)
    crashes = {n for n in range(1, 200) if rng.random() < 0.25}
    env.service.orchestrator = FlakyOrchestrator(env.service.orchestrator, crash_on=crashes)

    # When every delivery is handled, a crashed one being redelivered until it succeeds (as SQS does)
    queue = list(deliveries)
    while queue:
        upload = queue.pop(0)
        try:
            env.service.handle(upload)
        except TimeoutError:
            queue.insert(rng.randrange(len(queue) + 1), upload)

    # Then every sample started exactly once, with all four files, and the stray file was reported once
    assert started_samples(env) == samples
    for sample in samples:
        item = sample_item(env, sample)
        assert item["status"] == "MANIFESTED" and "execution_started_at" in item
        assert len([k for k in item if k.startswith("fastq#")]) == 4
    assert len(env.events.of_type("FileIgnored")) == 1
    assert env.events.of_type("SampleReuploaded") == []
    # And every uploaded key is accounted for: uploaded = in manifests + ignored + in conflict
    catalog = env.service.catalog
    ignored = [key for key, _ in catalog.ignored_files(RUN)]
    accounting = account([u.key for u in uploads], catalog.samples_of_run(RUN), ignored)
    assert accounting | {"unaccounted": []} == {
        "uploaded": 49,
        "in_manifests": 48,
        "ignored": 1,
        "in_conflict": 0,
        "balanced": True,
        "unaccounted": [],
    }
    assert env.events.of_type("SampleConflict") == []


def test_ingest_marker_uploaded_before_the_files_starts_what_arrived_and_reports_later_lanes(env):
    # Given a completion marker uploaded before any FASTQ of the run (no sample sheet): the run closes empty
    env.service.handle(env.marker())
    # When lane 2 arrives complete, then lane 1
    lane2 = handle_all(env, [env.fastq(2, 1), env.fastq(2, 2)])
    lane1 = handle_all(env, [env.fastq(1, 1), env.fastq(1, 2)])
    # Then lane 2 started as it was, and lane 1 made a new version, started and reported, never mixed into the first
    assert lane2[-1].disposition is Disposition.STARTED
    assert lane1[-1].disposition is Disposition.REUPLOADED
    assert len(env.executions()) == 2
    [reported] = env.events.of_type("SampleReuploaded")
    assert reported["previous_version"] == lane2[-1].detail and reported["version"] == lane1[-1].detail


@pytest.mark.parametrize("seed", [3, 5])
def test_ingest_chaos_with_conflicts_holds_them_and_accounts_for_every_key(env, seed):
    # Given 6 samples x 2 lanes x 2 reads declared by a sheet, one sample with a second key for L001 R1 (another
    # S-number) and one with a lane the sheet does not declare, delivered in a random order, 30% duplicated
    rng = random.Random(seed)
    samples = [f"S{n:02d}" for n in range(1, 7)]
    uploads = [env.upload(name(s, n, lane, r)) for n, s in enumerate(samples, 1) for lane in (1, 2) for r in (1, 2)]
    uploads += [env.upload(name("S02", 9, 1, 1)), env.upload(name("S03", 3, 3, 1))]
    sheet_rows = "".join(f"{lane},{s},ACGT\n" for s in samples for lane in (1, 2))
    text = f"[Header]\nFileFormatVersion,2\n\n[BCLConvert_Data]\nLane,Sample_ID,Index\n{sheet_rows}"
    uploads += [env.upload("SampleSheet.csv", body=text.encode()), env.marker(), env.upload("Reports/x.html")]
    deliveries = uploads + [u for u in uploads if rng.random() < 0.3]
    rng.shuffle(deliveries)

    # When every delivery is handled
    outcomes = handle_all(env, deliveries)

    # Then no sample started twice, S02 never started (the marker's listing or its second key came first, or
    # it started before and keeps its analysis), S03's extra lane is reported, and nothing was re-versioned
    started = sorted(name.split("-")[-2] for outcome in outcomes for name in outcome.started)
    assert len(started) == len(set(started)) and {"S01", "S04", "S05", "S06"} <= set(started)
    assert env.events.of_type("SampleReuploaded") == []
    conflicts = sorted((e["sample_id"], e["slot"]) for e in env.events.of_type("SampleConflict"))
    assert conflicts == [("S02", "L001 R1"), ("S03", "L003 R1")]
    # And uploaded = in manifests + ignored + in conflict
    catalog = env.service.catalog
    ignored = [key for key, _ in catalog.ignored_files(RUN)]
    accounting = account([u.key for u in uploads], catalog.samples_of_run(RUN), ignored)
    assert accounting["balanced"] and accounting["uploaded"] == 27 and accounting["ignored"] == 1
    assert accounting["in_conflict"] >= 2


def test_ingest_non_utf8_sheet_is_rejected_with_its_name_and_byte_offset(env):
    # Given a sheet saved as Latin-1 (an accented Sample_Project)
    body = "[Header]\nFileFormatVersion,2\n[BCLConvert_Data]\nSample_ID,Sample_Project\nA,Jos\u00e9\n".encode("latin-1")
    # When handled
    outcome = env.service.handle(env.upload("SampleSheet.csv", body=body))
    # Then it is rejected, naming the file and the byte offset, and the rejection is published
    assert outcome.disposition is Disposition.SHEET_REJECTED
    assert outcome.detail == (
        f"{RUN}/SampleSheet.csv: not UTF-8 text: byte 0xe9 at byte offset 77 cannot be read (save the sheet as UTF-8)"
    )
    [rejected] = env.events.of_type("SampleSheetRejected")
    assert rejected["error"] == outcome.detail and rejected["line"] is None
    schema = json.loads((ROOT / "events" / "schemas" / "SampleSheetRejected.json").read_text())
    Draft202012Validator(schema).validate(rejected)
