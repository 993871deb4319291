"""Illumina FASTQ names and run keys: what seqlane accepts, what it ignores and why."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlane.naming import (
    MAX_LANE,
    RUN_COMPLETION_MARKERS,
    SAMPLE_SHEET_NAME,
    CompletionMarkerKey,
    FastqKey,
    FastqName,
    IgnoredKey,
    RunKey,
    SampleSheetKey,
    UnrecognisedKey,
    classify_key,
    format_fastq_name,
    parse_fastq_name,
    split_run_key,
)

RUN = "241121_A01234_0042_BHXXXXXXXX"
KINDS = (FastqKey, SampleSheetKey, CompletionMarkerKey, IgnoredKey)

# ---- parse_fastq_name


@pytest.mark.parametrize(
    ("file_name", "sample", "number", "lane", "read"),
    [
        ("NA12878_S1_L001_R1_001.fastq.gz", "NA12878", 1, 1, "R1"),
        ("NA12878_S1_L001_R2_001.fastq.gz", "NA12878", 1, 1, "R2"),
        ("Tumour_A_S12_L004_R1_001.fastq.gz", "Tumour_A", 12, 4, "R1"),
        ("pt-007_S3_L008_R2_001.fastq.gz", "pt-007", 3, 8, "R2"),
        ("lib.v2.rep1_S96_L005_R1_001.fastq.gz", "lib.v2.rep1", 96, 5, "R1"),
        ("S1_S1_L002_R1_001.fastq.gz", "S1", 1, 2, "R1"),
    ],
)
def test_parse_fastq_name_reads_sample_lane_and_read(file_name, sample, number, lane, read):
    # Given an Illumina FASTQ file name
    # When parsed
    name = parse_fastq_name(file_name)
    # Then sample, number, lane and read come back, segment 1, gzip, an analysed read
    assert (name.sample_id, name.sample_number, name.lane, name.read, name.segment) == (sample, number, lane, read, 1)
    assert name.compression == "gz"
    assert not name.is_index and not name.is_undetermined
    assert name.read_number == int(read[1])


@pytest.mark.parametrize("lane", range(1, MAX_LANE + 1))
def test_parse_fastq_name_accepts_lanes_one_to_eight(lane):
    # Given / When a name in each lane is parsed / Then the lane comes back
    assert parse_fastq_name(f"NA12878_S1_L{lane:03d}_R1_001.fastq.gz").lane == lane


@pytest.mark.parametrize(
    ("file_name", "compression"),
    [
        ("NA12878_S1_L001_R1_001.fastq.gz", "gz"),
        ("NA12878_S1_L001_R1_001.fastq.ora", "ora"),
        ("NA12878_S1_L001_R1_001.fastq", "none"),
    ],
)
def test_parse_fastq_name_reads_compression_from_suffix(file_name, compression):
    # Given a FASTQ gzipped, ORA-compressed or plain
    # When parsed
    name = parse_fastq_name(file_name)
    # Then the compression follows the suffix and the rest of the name is the same
    assert name == FastqName("NA12878", 1, 1, "R1", 1, compression)


def test_parse_fastq_name_lane_merged_has_no_lane():
    # Given a name without the _L00n_ part (bcl2fastq --no-lane-splitting, BCL Convert NoLaneSplitting)
    # When parsed
    name = parse_fastq_name("NA12878_S1_R2_001.fastq.gz")
    # Then the lane is None and the rest is read as usual
    assert name == FastqName("NA12878", 1, None, "R2", 1, "gz")
    assert not name.is_index and not name.is_undetermined


@pytest.mark.parametrize("read", ["I1", "I2"])
def test_parse_fastq_name_index_reads_are_not_analysed(read):
    # Given an index read's FASTQ
    # When parsed
    name = parse_fastq_name(f"NA12878_S1_L001_{read}_001.fastq.gz")
    # Then it is an index read, not analysed
    assert name.read == read
    assert name.is_index
    assert name.is_index or name.is_undetermined
    assert name.read_number == int(read[1])


@pytest.mark.parametrize(
    ("file_name", "lane"),
    [("Undetermined_S0_L001_R1_001.fastq.gz", 1), ("Undetermined_S0_R1_001.fastq.gz", None)],
)
def test_parse_fastq_name_undetermined_s0_parses_and_is_not_analysed(file_name, lane):
    # Given the Undetermined reads, per lane or lane-merged
    # When parsed
    name = parse_fastq_name(file_name)
    # Then it is Undetermined (S0), not analysed
    assert (name.sample_id, name.sample_number, name.lane) == ("Undetermined", 0, lane)
    assert name.is_undetermined
    assert name.is_index or name.is_undetermined


def test_parse_fastq_name_undetermined_needs_s0():
    # Given a sample that happens to be called Undetermined but has a real sample number
    # When parsed
    name = parse_fastq_name("Undetermined_S4_L001_R1_001.fastq.gz")
    # Then it is an ordinary sample
    assert not name.is_undetermined
    assert not name.is_index and not name.is_undetermined


def test_parse_fastq_name_split_segment():
    # Given the second segment of a split FASTQ
    # When parsed
    name = parse_fastq_name("NA12878_S1_L001_R1_002.fastq.gz")
    # Then the segment is 2
    assert name.segment == 2


@pytest.mark.parametrize(
    ("file_name", "sample", "number", "lane"),
    [
        ("run_S2_S1_L001_R1_001.fastq.gz", "run_S2", 1, 1),
        ("pool_L001_S3_L002_R1_001.fastq.gz", "pool_L001", 3, 2),
        ("a_S2_L001_x_S5_R1_001.fastq.gz", "a_S2_L001_x", 5, None),
        ("x_S1_L009_S2_L001_R1_001.fastq.gz", "x_S1_L009", 2, 1),
    ],
)
def test_parse_fastq_name_last_sample_number_decides(file_name, sample, number, lane):
    # Given a Sample_ID that itself contains _S<n> or _L00<n>
    # When parsed
    name = parse_fastq_name(file_name)
    # Then the last _S<n> followed by a valid tail splits the name
    assert (name.sample_id, name.sample_number, name.lane) == (sample, number, lane)


@pytest.mark.parametrize(
    ("file_name", "reason"),
    [
        ("x_S1_L009_R1_001.fastq.gz", "'x_S1_L009_R1_001.fastq.gz' has lane L009; lanes are L001\N{EN DASH}L008"),
        ("x_S1_L000_R1_001.fastq.gz", "has lane L000; lanes are L001\N{EN DASH}L008"),
        ("x_S1_L010_R1_001.fastq.gz", "has lane L010"),
        ("x_S1_L1_R1_001.fastq.gz", "has lane L1"),
        ("x_S1_L001_R1_000.fastq.gz", "has segment 000; segments are 001\N{EN DASH}999"),
        ("x_S1_L001_R1_1.fastq.gz", "has segment 1;"),
        ("NA12878_S0_L001_R1_001.fastq.gz", "is sample number S0, which only Undetermined reads use"),
        ("NA12878_S01_L001_R1_001.fastq.gz", "sample number S01; sample numbers have no leading zeros"),
        ("NA12878_S1234567890_L001_R1_001.fastq.gz", "sample number of 10 digits"),
        ("NA12878_S1_L001_R3_001.fastq.gz", "has read R3; reads are R1, R2, I1 and I2"),
        ("NA 12878_S1_L001_R1_001.fastq.gz", "has Sample_ID 'NA 12878'"),
        ("NA12878_S1_L001_R1_001.fq.gz", r"ends in \.fq\.gz; only \.fastq\.gz, \.fastq\.ora and \.fastq"),
        ("NA12878_S1_L001_R1_001.fq", r"ends in \.fq;"),
        ("NA12878_S1_L001_R1_001.fastq.gz.md5", "is not a FASTQ"),
        ("NA12878_L001_R1_001.fastq.gz", "'NA12878_L001_R1_001.fastq.gz' is not an Illumina FASTQ name"),
        ("_S1_L001_R1_001.fastq.gz", "is not an Illumina FASTQ name"),
        ("NA12878_S1_L001_R1.fastq.gz", "is not an Illumina FASTQ name"),
    ],
)
def test_parse_fastq_name_rejects_with_reason(file_name, reason):
    # Given a name that is not a usable Illumina FASTQ name
    # When / Then parsing refuses it with a reason naming the file and what is wrong
    with pytest.raises(UnrecognisedKey, match=reason) as refused:
        parse_fastq_name(file_name)
    assert repr(file_name) in str(refused.value)


# ---- format_fastq_name


@pytest.mark.parametrize(
    ("name", "file_name"),
    [
        (FastqName("NA12878", 1, 1, "R1", 1, "gz"), "NA12878_S1_L001_R1_001.fastq.gz"),
        (FastqName("NA12878", 1, None, "I2", 12, "ora"), "NA12878_S1_I2_012.fastq.ora"),
        (FastqName("Undetermined", 0, 8, "R2", 999, "none"), "Undetermined_S0_L008_R2_999.fastq"),
    ],
)
def test_format_fastq_name_writes_the_illumina_name(name, file_name):
    # Given a FastqName / When formatted / Then it is the name BCL Convert writes
    assert format_fastq_name(name) == file_name


@pytest.mark.parametrize(
    "name",
    [
        FastqName("NA12878", 0, 1, "R1", 1, "gz"),  # S0 for a real sample
        FastqName("NA12878", 1, 9, "R1", 1, "gz"),  # lane 9
        FastqName("NA12878", 1, 1, "R1", 0, "gz"),  # segment 0
        FastqName("NA 12878", 1, 1, "R1", 1, "gz"),  # space in the Sample_ID
        FastqName("NA12878", 1, 1, "R1", 1, "bz2"),  # unknown compression
    ],
)
def test_format_fastq_name_refuses_names_with_no_illumina_form(name):
    # Given a FastqName that parse_fastq_name could never return
    # When / Then formatting it is refused
    with pytest.raises(ValueError):
        format_fastq_name(name)


# ---- split_run_key and is_run_completion_marker


def test_split_run_key_takes_first_segment_as_run():
    # Given a FASTQ in a sub-folder of its run
    # When split
    run_key = split_run_key(f"{RUN}/Data/Fastq/NA12878_S1_L001_R1_001.fastq.gz")
    # Then the run is the top folder and the file name is the last segment
    assert run_key.run_id == RUN
    assert run_key.relative_path == "Data/Fastq/NA12878_S1_L001_R1_001.fastq.gz"
    assert run_key.file_name == "NA12878_S1_L001_R1_001.fastq.gz"


@pytest.mark.parametrize("key", ["NA12878_S1_L001_R1_001.fastq.gz", "/NA12878_S1_L001_R1_001.fastq.gz", f"{RUN}/"])
def test_split_run_key_rejects_keys_outside_a_run_folder(key):
    # Given a key with no run folder, an empty run or an empty path / When / Then it is refused
    with pytest.raises(UnrecognisedKey, match="is not under a run folder"):
        split_run_key(key)


@pytest.mark.parametrize(
    ("key", "closes_run"),
    [
        (f"{RUN}/CopyComplete.txt", True),
        (f"{RUN}/RTAComplete.txt", True),
        (f"{RUN}/RTAComplete.xml", True),
        (f"{RUN}/sub/CopyComplete.txt", False),
        (f"{RUN}/Reports/RTAComplete.txt", False),
        (f"{RUN}/CopyComplete.txt.bak", False),
        (f"{RUN}/NA12878_S1_L001_R1_001.fastq.gz", False),
    ],
)
def test_classify_key_completion_marker_only_at_run_top_level(key, closes_run):
    # Given a key of a run / When classified / Then only a top-level marker closes the run
    assert isinstance(classify_key(key), CompletionMarkerKey) is closes_run


# ---- classify_key


@pytest.mark.parametrize(
    "path",
    [
        "NA12878_S1_L001_R1_001.fastq.gz",
        "Sample_Project/NA12878_S1_L001_R1_001.fastq.gz",
        "Analysis/1/Data/fastq/NA12878_S1_L001_R1_001.fastq.gz",
        "Project_X/Sample_Y/NA12878_S1_L001_R1_001.fastq.gz",
    ],
)
def test_classify_key_fastq_at_any_depth_of_the_run(path):
    # Given a sample's FASTQ at the top of the run folder or under sub-folders
    # When classified
    kind = classify_key(f"{RUN}/{path}")
    # Then it is a FASTQ of the run, whatever the folder
    assert kind == FastqKey(RunKey(RUN, path), FastqName("NA12878", 1, 1, "R1", 1, "gz"))
    assert kind.run_key.file_name == "NA12878_S1_L001_R1_001.fastq.gz"


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("NA12878_S1_L002_R2_001.fastq", FastqName("NA12878", 1, 2, "R2", 1, "none")),
        ("NA12878_S1_L002_R2_001.fastq.ora", FastqName("NA12878", 1, 2, "R2", 1, "ora")),
        ("NA12878_S1_R1_001.fastq.gz", FastqName("NA12878", 1, None, "R1", 1, "gz")),
        ("NA12878_S1_L001_R1_002.fastq.gz", FastqName("NA12878", 1, 1, "R1", 2, "gz")),
    ],
)
def test_classify_key_fastq_plain_ora_lane_merged_and_split(file_name, expected):
    # Given a plain, ORA, lane-merged or second-segment FASTQ
    # When classified / Then it is a FASTQ with that name
    assert classify_key(f"{RUN}/{file_name}") == FastqKey(RunKey(RUN, file_name), expected)


@pytest.mark.parametrize("marker", sorted(RUN_COMPLETION_MARKERS))
def test_classify_key_completion_marker_at_top_level_closes_the_run(marker):
    # Given a completion marker (CopyComplete.txt, RTAComplete.txt, RTAComplete.xml) at the top of the run
    # When classified / Then it is the run's completion marker
    assert classify_key(f"{RUN}/{marker}") == CompletionMarkerKey(RunKey(RUN, marker))


@pytest.mark.parametrize("path", ["sub/CopyComplete.txt", "Reports/RTAComplete.txt", "Analysis/1/RTAComplete.xml"])
def test_classify_key_completion_marker_in_sub_folder_is_ignored(path):
    # Given a completion marker's name inside a sub-folder
    # When classified
    kind = classify_key(f"{RUN}/{path}")
    # Then it is ignored, saying it does not close the run
    assert isinstance(kind, IgnoredKey)
    assert kind.run_id == RUN
    assert "completion marker inside a sub-folder does not close the run" in kind.reason
    assert path in kind.reason


def test_classify_key_top_level_sample_sheet():
    # Given the run's sample sheet at the top of the run folder
    # When classified / Then it is the sample sheet
    assert classify_key(f"{RUN}/{SAMPLE_SHEET_NAME}") == SampleSheetKey(RunKey(RUN, SAMPLE_SHEET_NAME))


@pytest.mark.parametrize("path", ["Reports/SampleSheet.csv", "Analysis/1/Data/SampleSheet.csv"])
def test_classify_key_sample_sheet_copy_in_sub_folder_is_ignored(path):
    # Given a copy of the sample sheet inside a sub-folder (BCL Convert writes one to Reports/)
    # When classified
    kind = classify_key(f"{RUN}/{path}")
    # Then it is ignored as a copy; only the top-level sheet is read
    assert kind == IgnoredKey(
        f"{RUN}/{path}", RUN, f"{path!r} is a copy of the sample sheet; only the top-level SampleSheet.csv is read"
    )


@pytest.mark.parametrize(
    "path",
    [
        "NA12878_S1_L001_R1_001.fastq.gz.md5",
        "NA12878_S1_L001_R1_001.fastq.gz.md5sum",
        "Sample_Project/NA12878_S1_L001_R1_001.fastq.gz.sha256",
        "NA12878_S1_L001_R1_001.fastq.gz.sha1",
        "checksums.MD5",
    ],
)
def test_classify_key_checksum_sidecar_is_ignored(path):
    # Given a checksum sidecar next to a FASTQ
    # When classified / Then it is ignored as a checksum sidecar
    kind = classify_key(f"{RUN}/{path}")
    assert kind == IgnoredKey(f"{RUN}/{path}", RUN, f"{path!r} is a checksum sidecar, not sequence data")


@pytest.mark.parametrize(
    ("path", "folder"),
    [
        ("Reports/Demultiplex_Stats.csv", "Reports"),
        ("Logs/Info.log", "Logs"),
        ("Stats/Stats.json", "Stats"),
        ("InterOp/ExtractionMetricsOut.bin", "InterOp"),
        ("Thumbnail_Images/L001/C1.1/s_1_1101_a.jpg", "Thumbnail_Images"),
        ("Analysis/1/Data/Reports/NA12878_S1_L001_R1_001.fastq.gz", "Reports"),
    ],
)
def test_classify_key_report_and_log_folders_are_ignored(path, folder):
    # Given anything under a Reports/, Logs/, Stats/, InterOp/ or Thumbnail_Images/ folder
    # When classified
    kind = classify_key(f"{RUN}/{path}")
    # Then it is ignored, naming the folder
    assert isinstance(kind, IgnoredKey)
    assert kind.reason == f"{path!r} is under {folder}/, which holds reports and logs, not sequence data"


@pytest.mark.parametrize(
    "path",
    ["RunInfo.xml", "RunParameters.xml", "RunCompletionStatus.xml", "multiqc_report.html", "Data/summary.pdf", "x.txt"],
)
def test_classify_key_report_or_log_file_is_ignored(path):
    # Given a report or log file outside the report folders
    # When classified / Then it is ignored as a report or log file
    kind = classify_key(f"{RUN}/{path}")
    assert kind == IgnoredKey(f"{RUN}/{path}", RUN, f"{path!r} is a report or log file, not sequence data")


@pytest.mark.parametrize("read", ["I1", "I2"])
def test_classify_key_index_read_is_ignored(read):
    # Given an index read's FASTQ
    # When classified
    kind = classify_key(f"{RUN}/Sample_Project/NA12878_S1_L001_{read}_001.fastq.gz")
    # Then it is ignored and kept out of manifests
    assert isinstance(kind, IgnoredKey)
    assert kind.run_id == RUN
    assert f"index read {read}" in kind.reason
    assert "kept out of manifests" in kind.reason


@pytest.mark.parametrize("file_name", ["Undetermined_S0_L001_R1_001.fastq.gz", "Undetermined_S0_R2_001.fastq.gz"])
def test_classify_key_undetermined_is_ignored(file_name):
    # Given the Undetermined reads, per lane or lane-merged
    # When classified
    kind = classify_key(f"{RUN}/{file_name}")
    # Then they are ignored as not assigned to a sample
    assert kind == IgnoredKey(
        f"{RUN}/{file_name}", RUN, f"{file_name!r} holds Undetermined reads, which are not assigned to a sample"
    )


@pytest.mark.parametrize(
    ("file_name", "reason"),
    [
        ("x_S1_L009_R1_001.fastq.gz", "'x_S1_L009_R1_001.fastq.gz' has lane L009; lanes are L001\N{EN DASH}L008"),
        ("NA12878_S0_L001_R1_001.fastq.gz", "S0, which only Undetermined reads use"),
        ("NA12878_S1_L001_R1_001.fq.gz", r"ends in \.fq\.gz"),
        ("notes.fastq.gz", "is not an Illumina FASTQ name"),
    ],
)
def test_classify_key_unparseable_fastq_is_ignored_with_the_parsers_reason(file_name, reason):
    # Given a FASTQ-like name the parser refuses
    # When classified
    kind = classify_key(f"{RUN}/{file_name}")
    # Then it is ignored with the parser's reason
    assert isinstance(kind, IgnoredKey)
    assert kind.run_id == RUN
    with pytest.raises(UnrecognisedKey, match=reason) as refused:
        parse_fastq_name(file_name)
    assert kind.reason == str(refused.value)


@pytest.mark.parametrize("path", ["NA12878.bam", "Data/Intensities/BaseCalls/L001/C1.1/s_1_1101.cbcl", "notes"])
def test_classify_key_anything_else_is_ignored(path):
    # Given a file that is none of the kinds seqlane uses
    # When classified / Then it is ignored, saying what it is not
    kind = classify_key(f"{RUN}/{path}")
    assert kind == IgnoredKey(f"{RUN}/{path}", RUN, f"{path!r} is not a FASTQ, sample sheet or run completion marker")


@pytest.mark.parametrize("key", ["NA12878_S1_L001_R1_001.fastq.gz", "/CopyComplete.txt", f"{RUN}/", ""])
def test_classify_key_outside_a_run_folder_is_ignored_without_run(key):
    # Given a key not under a run folder
    # When classified
    kind = classify_key(key)
    # Then it is ignored with no run, saying why
    assert isinstance(kind, IgnoredKey)
    assert kind.run_id is None
    assert kind.key == key
    assert "is not under a run folder" in kind.reason


def test_classify_key_folder_placeholder_is_ignored():
    # Given a zero-byte "folder" key such as the S3 console creates
    # When classified / Then it is ignored as a placeholder
    kind = classify_key(f"{RUN}/Sample_Project/")
    assert kind == IgnoredKey(f"{RUN}/Sample_Project/", RUN, "'Sample_Project/' is a folder placeholder, not a file")


# ---- properties

SAMPLE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
FOLDER_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
REPORT_FOLDERS = {"Reports", "Logs", "Stats", "InterOp", "Thumbnail_Images"}

# Sample_IDs from the allowed alphabet, often holding fragments that look like the parts of a FASTQ name.
lookalike = st.one_of(
    st.integers(0, 999).map(lambda n: f"_S{n}"),
    st.integers(0, 9).map(lambda n: f"_L00{n}"),
    st.sampled_from(["_R1", "_I2", "_001", "_R2_001", "Undetermined", ".fastq", "_"]),
)
sample_ids = st.lists(st.one_of(st.text(SAMPLE_ALPHABET, min_size=1, max_size=10), lookalike), min_size=1).map("".join)
lanes = st.one_of(st.none(), st.integers(1, MAX_LANE))
reads = st.sampled_from(["R1", "R2", "I1", "I2"])
segments = st.integers(1, 999)
compressions = st.sampled_from(["gz", "ora", "none"])

sample_names = st.builds(
    FastqName,
    sample_id=sample_ids,
    sample_number=st.integers(1, 9999),
    lane=lanes,
    read=reads,
    segment=segments,
    compression=compressions,
)
undetermined_names = st.builds(
    FastqName,
    sample_id=st.just("Undetermined"),
    sample_number=st.just(0),
    lane=lanes,
    read=reads,
    segment=segments,
    compression=compressions,
)
analysed_names = st.builds(
    FastqName,
    sample_id=sample_ids,
    sample_number=st.integers(1, 9999),
    lane=lanes,
    read=st.sampled_from(["R1", "R2"]),
    segment=segments,
    compression=compressions,
)
run_ids = st.text(FOLDER_ALPHABET, min_size=1, max_size=40)
sub_folders = st.lists(
    st.text(FOLDER_ALPHABET, min_size=1, max_size=12).filter(lambda folder: folder not in REPORT_FOLDERS), max_size=3
)
# Keys shaped like a run's keys, with pieces of real names, to reach every branch of classify_key.
key_parts = st.one_of(
    st.text(max_size=8),
    st.sampled_from(
        [
            "/",
            "_S1",
            "_S0",
            "_L001",
            "_L009",
            "_R1",
            "_I1",
            "_001",
            ".fastq",
            ".fastq.gz",
            ".fq.gz",
            ".md5",
            "Reports/",
            "SampleSheet.csv",
            "CopyComplete.txt",
            "Undetermined",
        ]
    ),
)
keys = st.one_of(st.text(), st.lists(key_parts, max_size=10).map("".join))


@settings(max_examples=200, deadline=None)
@given(name=st.one_of(sample_names, undetermined_names))
def test_parse_fastq_name_round_trips_format_fastq_name(name):
    # Given any valid FastqName, Sample_IDs holding _S<n> or _L00<n> included
    # When formatted and parsed back
    # Then the same name returns
    assert parse_fastq_name(format_fastq_name(name)) == name


@settings(max_examples=200, deadline=None)
@given(key=keys)
def test_classify_key_never_raises(key):
    # Given any text as a key
    # When classified
    kind = classify_key(key)
    # Then it is one of the four kinds, for that key
    assert isinstance(kind, KINDS)
    if isinstance(kind, IgnoredKey):
        assert kind.key == key
        assert kind.reason


@settings(max_examples=200, deadline=None)
@given(file_name=keys)
def test_parse_fastq_name_refuses_only_with_unrecognised_key(file_name):
    # Given any text as a file name
    # When parsed / Then it either parses or is refused with UnrecognisedKey naming the file
    try:
        parse_fastq_name(file_name)
    except UnrecognisedKey as refused:
        assert repr(file_name) in str(refused)


@settings(max_examples=200, deadline=None)
@given(run_id=run_ids, folders=sub_folders, name=analysed_names)
def test_classify_key_finds_analysed_fastq_of_its_run(run_id, folders, name):
    # Given a sample's R1/R2 FASTQ under a run folder, maybe inside sub-folders
    path = "/".join([*folders, format_fastq_name(name)])
    # When classified
    kind = classify_key(f"{run_id}/{path}")
    # Then it is a FASTQ of that run (the first segment) with that name
    assert kind == FastqKey(RunKey(run_id, path), name)
