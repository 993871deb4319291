"""Manifest: content-addressed versions, the DRAGEN fastq-list CSV, execution names and the JSON round trip."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import random
import re

import pytest

from seqlane.manifest import FASTQ_LIST_HEADER, FastqFile, Manifest, Route

RUN = "241121_A01234_0042_BHXXXXXXXX"
SAMPLE = "NA12878"
ROUTE = Route(modality="germline-wgs", dragen_version="4.3.6", reference_uri="s3://refs/hg38/", region="eu-west-2")
FILES = tuple(
    FastqFile(
        key=f"{RUN}/{SAMPLE}_S1_L{lane:03d}_R{read}_001.fastq.gz",
        lane=lane,
        read=read,
        size=1000 * lane + read,
        etag=f"etag-{lane}-{read}",
    )
    for lane in (1, 2, 3)
    for read in (1, 2)
)
EXECUTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")


def manifest(files=FILES, run_id=RUN, sample_id=SAMPLE, route=ROUTE) -> Manifest:
    return Manifest(run_id, sample_id, "ingest-bucket", "results-bucket", route, tuple(files))


@pytest.mark.parametrize("seed", range(5))
def test_manifest_is_independent_of_file_order(seed):
    # Given the same files in a shuffled order
    shuffled = random.Random(seed).sample(FILES, len(FILES))
    # When both manifests are built / Then version and written bytes are identical
    original, reordered = manifest(), manifest(shuffled)
    assert reordered.version == original.version
    assert reordered.to_json() == original.to_json()
    assert reordered.fastq_list_csv() == original.fastq_list_csv()


@pytest.mark.parametrize(
    "change",
    [
        {"etag": "other-etag"},
        {"size": FILES[0].size + 1},
    ],
)
def test_manifest_version_changes_with_file_content(change):
    changed = (dataclasses.replace(FILES[0], **change), *FILES[1:])
    assert manifest(changed).version != manifest().version


@pytest.mark.parametrize(
    "change",
    [
        {"modality": "somatic-wgs"},
        {"dragen_version": "4.4.1"},
        {"reference_uri": "s3://refs/hg19/"},
        {"region": "eu-west-1"},
    ],
)
def test_manifest_version_changes_with_route(change):
    assert manifest(route=dataclasses.replace(ROUTE, **change)).version != manifest().version


def test_fastq_list_csv_has_one_row_per_lane_sorted_with_ingest_uris():
    # Given files of three lanes in reverse order / When the CSV is written
    text = manifest(reversed(FILES)).fastq_list_csv()
    # Then the header is DRAGEN's, and each lane has one row with both reads' S3 URIs in the ingest bucket
    assert text.splitlines()[0] == "RGID,RGSM,RGLB,Lane,Read1File,Read2File"
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == FASTQ_LIST_HEADER
    assert [row["Lane"] for row in rows] == ["1", "2", "3"]
    for row in rows:
        lane = int(row["Lane"])
        assert row["RGSM"] == row["RGLB"] == SAMPLE
        assert row["RGID"] == f"{RUN}.{SAMPLE}.{lane}"
        assert row["Read1File"] == f"s3://ingest-bucket/{RUN}/{SAMPLE}_S1_L{lane:03d}_R1_001.fastq.gz"
        assert row["Read2File"] == f"s3://ingest-bucket/{RUN}/{SAMPLE}_S1_L{lane:03d}_R2_001.fastq.gz"


@pytest.mark.parametrize(
    ("run_id", "sample_id"),
    [
        (RUN, SAMPLE),
        ("R" * 200, "S" * 200),
        ("run with spaces", "sample.with.dots+plus/slash"),
        ("ранний", "échantillon_ü"),
    ],
)
def test_execution_name_is_valid_and_unique_per_version(run_id, sample_id):
    # Given a manifest with long or odd names, and one whose content differs
    first = manifest(run_id=run_id, sample_id=sample_id)
    second = manifest((dataclasses.replace(FILES[0], etag="new"), *FILES[1:]), run_id=run_id, sample_id=sample_id)
    # Then both execution names are valid Step Functions names, and they differ
    assert EXECUTION_NAME.match(first.execution_name)
    assert EXECUTION_NAME.match(second.execution_name)
    assert first.execution_name != second.execution_name
    assert first.execution_name.endswith(first.version)


def test_from_json_round_trips():
    original = manifest(reversed(FILES))
    restored = Manifest.from_json(original.to_json())
    assert restored.version == original.version
    assert restored.to_json() == original.to_json()


def test_from_json_rejects_altered_manifest():
    # Given a written manifest whose file etag was changed afterwards
    data = json.loads(manifest().to_json())
    data["files"][0]["etag"] = "tampered"
    # When read / Then the hash mismatch is reported
    with pytest.raises(ValueError, match="does not match its content_sha256"):
        Manifest.from_dict(data)


def test_from_json_rejects_wrong_schema():
    data = json.loads(manifest().to_json())
    data["schema"] = "seqlane.manifest/0"
    with pytest.raises(ValueError, match="not a seqlane manifest"):
        Manifest.from_json(json.dumps(data))


def test_output_and_manifest_locations_are_in_results_bucket():
    m = manifest()
    assert m.output_uri == f"s3://results-bucket/results/{RUN}/{SAMPLE}/{m.version}/"
    assert m.result_uri("job-1", 2) == m.output_uri + "job-1/2/seqlane-result.json"
    assert m.manifest_uri == f"s3://results-bucket/manifests/{RUN}/{SAMPLE}/{m.version}/manifest.json"


def test_attempt_prefix_refuses_attempt_zero():
    with pytest.raises(ValueError, match="count from 1"):
        manifest().attempt_uri("job-1", 0)


def test_execution_name_for_later_attempts_is_distinct_and_short():
    m = manifest()
    assert m.execution_name_for(1) == m.execution_name
    assert m.execution_name_for(2) == m.execution_name + "-a2"
    long = dataclasses.replace(m, sample_id="S" * 120)
    assert len(long.execution_name_for(12)) <= 80 and long.execution_name_for(12).endswith(f"-{long.version}-a12")
