"""Illumina FASTQ names and run keys: what seqlane accepts, what it refuses and why."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqlane.naming import UnrecognisedKey, is_run_completion_marker, parse_fastq_name, split_run_key

RUN = "241121_A01234_0042_BHXXXXXXXX"


@pytest.mark.parametrize(
    ("file_name", "sample", "number", "lane", "read"),
    [
        ("NA12878_S1_L001_R1_001.fastq.gz", "NA12878", 1, 1, 1),
        ("NA12878_S1_L001_R2_001.fastq.gz", "NA12878", 1, 1, 2),
        ("Tumour_A_S12_L004_R1_001.fastq.gz", "Tumour_A", 12, 4, 1),
        ("pt-007_S3_L008_R2_001.fastq.gz", "pt-007", 3, 8, 2),
        ("lib.v2.rep1_S96_L005_R1_001.fastq.gz", "lib.v2.rep1", 96, 5, 1),
        ("S1_S1_L002_R1_001.fastq.gz", "S1", 1, 2, 1),
    ],
)
def test_parse_fastq_name_reads_sample_lane_and_read(file_name, sample, number, lane, read):
    # Given an Illumina FASTQ file name / When parsed
    name = parse_fastq_name(file_name)
    # Then sample, number, lane and read come back; the segment is always 1
    assert (name.sample_id, name.sample_number, name.lane, name.read, name.segment) == (sample, number, lane, read, 1)


@pytest.mark.parametrize("lane", range(1, 9))
def test_parse_fastq_name_accepts_lanes_one_to_eight(lane):
    assert parse_fastq_name(f"NA12878_S1_L{lane:03d}_R1_001.fastq.gz").lane == lane


@pytest.mark.parametrize(
    ("file_name", "reason"),
    [
        ("NA12878_S1_L001_I1_001.fastq.gz", "not an Illumina FASTQ name"),  # index read
        ("Undetermined_S0_L001_R1_001.fastq.gz", r"Undetermined \(S0\)"),
        ("NA12878_S1_L001_R1_002.fastq.gz", "split segment 002"),
        ("NA12878_S1_L000_R1_001.fastq.gz", "lane L000"),
        ("NA12878_S1_L001_R1_001.fastq", "not an Illumina FASTQ name"),
        ("NA12878_S1_L001_R1_001.fastq.gz.md5", "not an Illumina FASTQ name"),
    ],
)
def test_parse_fastq_name_rejects_with_reason(file_name, reason):
    with pytest.raises(UnrecognisedKey, match=reason):
        parse_fastq_name(file_name)


def test_split_run_key_takes_first_segment_as_run():
    # Given a FASTQ in a sub-folder of its run / When split
    run_key = split_run_key(f"{RUN}/Data/Fastq/NA12878_S1_L001_R1_001.fastq.gz")
    # Then the run is the top folder and the file name is the last segment
    assert run_key.run_id == RUN
    assert run_key.relative_path == "Data/Fastq/NA12878_S1_L001_R1_001.fastq.gz"
    assert run_key.file_name == "NA12878_S1_L001_R1_001.fastq.gz"


@pytest.mark.parametrize("key", ["NA12878_S1_L001_R1_001.fastq.gz", "/NA12878_S1_L001_R1_001.fastq.gz", f"{RUN}/"])
def test_split_run_key_rejects_keys_outside_a_run_folder(key):
    with pytest.raises(UnrecognisedKey, match="is not under a run folder"):
        split_run_key(key)


@pytest.mark.parametrize(
    ("key", "closes_run"),
    [
        (f"{RUN}/CopyComplete.txt", True),
        (f"{RUN}/RTAComplete.txt", True),
        (f"{RUN}/sub/CopyComplete.txt", False),
        (f"{RUN}/Reports/RTAComplete.txt", False),
        (f"{RUN}/CopyComplete.txt.bak", False),
        (f"{RUN}/NA12878_S1_L001_R1_001.fastq.gz", False),
    ],
)
def test_is_run_completion_marker_only_at_run_top_level(key, closes_run):
    assert is_run_completion_marker(split_run_key(key)) is closes_run


@given(
    sample=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1),
    number=st.integers(min_value=1, max_value=999),
    lane=st.integers(min_value=1, max_value=8),
    read=st.integers(min_value=1, max_value=2),
)
def test_parse_fastq_name_round_trips_the_illumina_pattern(sample, number, lane, read):
    # Given any name built by the BCL Convert pattern / When parsed / Then the same sample, lane and read return
    name = parse_fastq_name(f"{sample}_S{number}_L{lane:03d}_R{read}_001.fastq.gz")
    assert (name.sample_id, name.sample_number, name.lane, name.read) == (sample, number, lane, read)
